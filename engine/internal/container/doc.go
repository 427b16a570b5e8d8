// Package container finds, in a media file's container structure, the byte
// ranges that a player's demuxer reads soon after it opens the file, so
// that a streaming reader can fetch them first instead of guessing the file's
// last pieces. It knows MP4/MOV (top-level boxes: ftyp, moov wherever it
// is, mdat; 64-bit box sizes), Matroska and WebM (EBML header, Segment,
// SeekHead, Cues and Tracks positions) and AVI (RIFF, hdrl, movi, idx1 and
// OpenDML super indexes).
//
// A Probe is a small step machine for readers that fetch bytes slowly (a
// torrent): New(size) starts it, Next says which range of the file to read,
// Feed hands those bytes over, and so on until Next reports that the walk is
// over; then Result returns the ranges. The first range asked for is the
// file's head. Walk runs the same steps over an io.ReaderAt. Every step,
// count and size read is capped, so hostile input costs a bounded number of
// steps and bounded memory, whatever the sizes it claims: a Probe keeps the
// bytes of at most Config.MaxSteps reads (16), each at most 256 KiB and
// usually 64 KiB, and drops them when the walk is over.
//
// # Concurrency
//
// A Probe is not safe for concurrent use; one goroutine drives it. The
// package has no goroutines and does no I/O of its own (Walk reads only
// through the io.ReaderAt it is given).
//
// # Errors
//
// Result's error wraps ErrUnknown when the head is no known container,
// ErrMalformed when the structure is inconsistent (a size past the end, an
// impossible element), ErrNoIndex when the container has no index where
// it should (an MP4 without moov), and ErrTooManySteps when the walk needed
// more steps than allowed. Ranges found before an error are still returned.
package container
