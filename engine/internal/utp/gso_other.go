//go:build !linux

package utp

func gsoControl(int) []byte { return nil }

const gsoSupported = false
