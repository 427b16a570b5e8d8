// Package readahead decides how far ahead of an open file's reads to fetch.
//
// A Policy belongs to one open reader. Every read goes through Read, which
// returns the byte window to prioritize: from the read's offset to the end
// of the current window of its stream. A stream is a run of sequential
// reads; a read continues a stream when it lands near the stream's
// furthest point: up to 8 MiB (or 4 requests) behind it, as the kernel
// issues a readahead window as concurrent requests that arrive in any
// order, and up to 4 MiB (or 2 requests) ahead of it. Once a stream has
// read Sustain bytes (1 MiB), every read that continues it doubles its
// window; before that the window stays at Min, so a probe reading a few
// small ranges (ffprobe, a thumbnailer, a media-library scanner) gets no
// deep window and a player reading on does. The window grows up to Max
// bytes and to MaxTime of data at the measured reading rate, never below
// Min. A read far from every recent stream is a seek: it starts a new
// stream with a window of Min bytes, and the old streams stop being
// prioritized (Windows) until a read continues them again, so two streams
// interleaved on one file (audio and video, say) both keep their windows.
//
// Two more rules live here as plain functions: NextFile and WarmDue say
// when a reader nearing the end of a file should have the head of the next
// file (the next episode) fetched, and ParsePrefetch reads the value of the
// user.swarmfs.prefetch extended attribute (a range to fetch in the
// background).
//
// # Concurrency
//
// A Policy is not safe for concurrent use; the caller serializes calls (the
// engine's reader does this under its lock or on its torrent goroutine). It
// never reads the clock: callers pass the time of each read. The functions
// are pure.
//
// # Errors
//
// Only ParsePrefetch returns errors; they wrap ErrBadPrefetch.
package readahead
