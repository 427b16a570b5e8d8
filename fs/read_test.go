package fs

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// contentFake is a multi-file torrent whose file boundaries fall inside
// pieces, with every piece present.
func contentFake(o fakeOptions) *fakeTorrent {
	return newFake("content", []fakeFile{
		{path: []string{"one.bin"}, data: randomBytes(11, 3_000_001)},
		{path: []string{"two.bin"}, data: randomBytes(12, 65_536)},
		{path: []string{"d", "three.bin"}, data: randomBytes(13, 12_345)},
		{path: []string{"zero"}, data: nil},
		{path: []string{"d", "four.bin"}, data: randomBytes(14, 5_000_000)},
	}, o)
}

func filePath(dir string, ft *fakeTorrent, i int) string {
	return filepath.Join(append([]string{dir, ft.name}, ft.full.Files[i].Path...)...)
}

func fileData(ft *fakeTorrent, i int) []byte {
	f := ft.full.Files[i]
	return ft.data[f.Offset : f.Offset+f.Length]
}

func TestReadWholeFiles(t *testing.T) {
	for _, mode := range []PageCacheMode{PageCacheAuto, PageCacheAlways, PageCacheNever} {
		t.Run(mode.String(), func(t *testing.T) {
			testReadWholeFiles(t, Options{PageCache: mode}, fakeOptions{pieceLength: 256 << 10})
		})
	}
	// Files still downloading: auto opens them with direct_io.
	t.Run("auto-downloading", func(t *testing.T) {
		testReadWholeFiles(t, Options{}, fakeOptions{pieceLength: 256 << 10, delay: time.Millisecond})
	})
}

func testReadWholeFiles(t *testing.T, opts Options, fo fakeOptions) {
	ft := contentFake(fo)
	_, dir := mountT(t, []Torrent{ft}, opts)
	for i := range ft.full.Files {
		within(t, 20*time.Second, "reading a file", func() error {
			got, err := os.ReadFile(filePath(dir, ft, i))
			if err != nil {
				return err
			}
			if sha1.Sum(got) != sha1.Sum(fileData(ft, i)) {
				t.Errorf("file %d: sha1 through the mount differs (len %d, want %d)", i, len(got), len(fileData(ft, i)))
			}
			return nil
		})
	}
	if o, c := ft.opens.Load(), ft.closes.Load(); o != int64(len(ft.full.Files)) {
		t.Errorf("%d readers opened for %d files (%d closed)", o, len(ft.full.Files), c)
	}
}

func TestRandomPreads(t *testing.T) {
	ft := contentFake(fakeOptions{pieceLength: 32 << 10})
	_, dir := mountT(t, []Torrent{ft}, Options{})
	r := rand.New(rand.NewPCG(1, 2))
	within(t, 30*time.Second, "random preads", func() error {
		for _, i := range []int{0, 4} {
			f, err := os.Open(filePath(dir, ft, i))
			if err != nil {
				return err
			}
			want := fileData(ft, i)
			for range 300 {
				off := r.Int64N(int64(len(want)))
				n := 1 + r.IntN(300_000)
				buf := make([]byte, n)
				k, err := f.ReadAt(buf, off)
				if err != nil && !errors.Is(err, io.EOF) {
					return fmt.Errorf("pread %d at %d: %v", n, off, err)
				}
				exp := want[off:min(off+int64(n), int64(len(want)))]
				if !bytes.Equal(buf[:k], exp) {
					return fmt.Errorf("pread %d at %d: %d bytes differ from the source (want %d)", n, off, k, len(exp))
				}
			}
			f.Close()
		}
		return nil
	})
}

func TestConcurrentReaders(t *testing.T) {
	ft := contentFake(fakeOptions{pieceLength: 64 << 10, delay: time.Millisecond})
	_, dir := mountT(t, []Torrent{ft}, Options{})
	var wg sync.WaitGroup
	files := []int{0, 0, 0, 4, 4, 1, 2}
	errs := make(chan error, len(files))
	for k, i := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := os.Open(filePath(dir, ft, i))
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			r := rand.New(rand.NewPCG(uint64(k), 7))
			var got bytes.Buffer
			buf := make([]byte, 1<<20)
			for {
				n, err := f.Read(buf[:1+r.IntN(len(buf))])
				got.Write(buf[:n])
				if err == io.EOF {
					break
				}
				if err != nil {
					errs <- err
					return
				}
			}
			if !bytes.Equal(got.Bytes(), fileData(ft, i)) {
				errs <- errors.New("concurrent read differs from the source")
			}
		}()
	}
	within(t, 40*time.Second, "concurrent readers", func() error { wg.Wait(); return nil })
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestReadPastEOF(t *testing.T) {
	ft := contentFake(fakeOptions{})
	_, dir := mountT(t, []Torrent{ft}, Options{})
	within(t, 10*time.Second, "reads at the end", func() error {
		f, err := os.Open(filePath(dir, ft, 2))
		if err != nil {
			return err
		}
		defer f.Close()
		size := int64(len(fileData(ft, 2)))
		buf := make([]byte, 1000)
		for _, off := range []int64{size, size + 1, size + 1<<20} {
			if n, err := f.ReadAt(buf, off); n != 0 || err != io.EOF {
				t.Errorf("pread at %d (size %d): %d, %v", off, size, n, err)
			}
		}
		n, err := f.ReadAt(buf, size-10)
		if n != 10 || err != io.EOF || !bytes.Equal(buf[:10], fileData(ft, 2)[size-10:]) {
			t.Errorf("pread across the end: %d, %v", n, err)
		}
		z, err := os.Open(filePath(dir, ft, 3))
		if err != nil {
			return err
		}
		defer z.Close()
		if n, err := z.Read(buf); n != 0 || err != io.EOF {
			t.Errorf("read of an empty file: %d, %v", n, err)
		}
		return nil
	})
}

// TestReadTimeout reads a missing piece: EIO after the read timeout, then
// the data once the piece arrives.
func TestReadTimeout(t *testing.T) {
	ft := contentFake(fakeOptions{gated: true})
	_, dir := mountT(t, []Torrent{ft}, Options{ReadTimeout: 300 * time.Millisecond})
	f, err := os.Open(filePath(dir, ft, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	within(t, 20*time.Second, "a read of a missing piece", func() error {
		_, err := f.ReadAt(buf, 0)
		if !errors.Is(err, syscall.EIO) {
			t.Errorf("read of a missing piece: %v, want EIO", err)
		}
		return nil
	})
	if ft.timedOut.Load() == 0 {
		t.Errorf("the reader's context did not time out")
	}
	ft.releaseAll()
	within(t, 20*time.Second, "a read after the piece arrived", func() error {
		n, err := f.ReadAt(buf, 0)
		if err != nil || !bytes.Equal(buf[:n], fileData(ft, 1)[:n]) || n != len(buf) {
			t.Errorf("read after release: %d, %v", n, err)
		}
		return nil
	})
}

// TestBlockedReadsDoNotStarve blocks more page-cache reads on missing pieces
// than the kernel's default limit of background requests (12), as readers
// that seeked away leave behind, and then reads present data elsewhere: it
// must not wait for the blocked ones.
func TestBlockedReadsDoNotStarve(t *testing.T) {
	const mib = 1 << 20
	ft := newFake("big", []fakeFile{{path: []string{"big.bin"}, data: randomBytes(31, 16*mib)}},
		fakeOptions{pieceLength: 64 << 10, gated: true})
	_, dir := mountT(t, []Torrent{ft}, Options{ReadTimeout: 30 * time.Second})
	path := filepath.Join(dir, "big", "big.bin")
	const blocked = 20
	var wg sync.WaitGroup
	defer func() {
		ft.releaseAll()
		within(t, 20*time.Second, "blocked readers to finish", func() error { wg.Wait(); return nil })
	}()
	for i := range blocked {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := os.Open(path)
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			_, _ = f.ReadAt(make([]byte, 4096), int64(i)*mib/2)
		}()
	}
	eventually(t, 10*time.Second, "20 reads to block", func() bool { return ft.waiting.Load() >= blocked })
	var present []int
	for p := 15 * mib / (64 << 10); p < len(ft.released); p++ {
		present = append(present, p)
	}
	ft.release(present...)
	within(t, 10*time.Second, "a read of present data beside blocked reads", func() error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		buf := make([]byte, 4096)
		if _, err := f.ReadAt(buf, 15*mib+100); err != nil {
			return err
		}
		if !bytes.Equal(buf, ft.data[15*mib+100:15*mib+100+4096]) {
			return errors.New("data differs from the source")
		}
		return nil
	})
}
