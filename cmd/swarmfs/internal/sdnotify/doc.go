// Package sdnotify tells systemd about a service's state with the
// sd_notify protocol: datagrams such as "READY=1", "STATUS=..." and
// "STOPPING=1" sent to the unix datagram socket named by $NOTIFY_SOCKET
// (a path, or an abstract name written with a leading '@').
//
// When NOTIFY_SOCKET is unset (not started by systemd, or not with
// Type=notify) every call does nothing and returns nil, so commands call
// it unconditionally.
//
// # Concurrency
//
// A Notifier is immutable and safe for concurrent use; each Send opens,
// writes and closes its own socket.
//
// # Errors
//
// ErrAddress reports a NOTIFY_SOCKET this package cannot use (neither a
// path nor an abstract name, e.g. systemd's vsock: form). Send returns
// the socket's error when the datagram cannot be delivered.
package sdnotify
