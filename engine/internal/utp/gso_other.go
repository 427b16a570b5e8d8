//go:build !linux

package utp

import "syscall"

func gsoControl(int) []byte { return nil }

func enableGRO(syscall.RawConn) bool { return false }

func groSegment([]byte) int { return 0 }

const gsoSupported = false
