package container

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// ebml builds a Matroska element with an 8-byte size.
func ebml(id uint32, payload ...[]byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, id)
	for b[0] == 0 {
		b = b[1:]
	}
	body := bytes.Join(payload, nil)
	b = binary.BigEndian.AppendUint64(b, uint64(len(body))|1<<56)
	return append(b, body...)
}

// ebmlUnknown builds the header of an element of unknown size.
func ebmlUnknown(id uint32) []byte {
	b := binary.BigEndian.AppendUint32(nil, id)
	return append(b, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
}

func ebmlUint(id uint32, v uint64) []byte {
	return ebml(id, binary.BigEndian.AppendUint64(nil, v))
}

func seek(id uint32, pos int64) []byte {
	return ebml(idSeek, ebml(idSeekID, binary.BigEndian.AppendUint32(nil, id)), ebmlUint(idSeekPosition, uint64(pos)))
}

const (
	idTags     = 0x1254C367
	idChapters = 0x1043A770
)

// TestMatroskaSeekHeads builds a 3 GiB Matroska file whose first SeekHead
// points to Cues and Tags at the end and to a second SeekHead there, which
// points to Chapters.
func TestMatroskaSeekHeads(t *testing.T) {
	const size = 3 * gib
	f := &sparse{size: size}
	header := ebml(idEBML, ebml(idDocType, []byte("matroska")))
	seg := int64(len(header)) + 12 // unknown-size Segment header
	cues := ebml(idCues, make([]byte, 5000))
	tags := ebml(idTags, make([]byte, 300))
	chapters := ebml(idChapters, make([]byte, 200))
	cuesOff := size - int64(len(cues)) - 100*kib
	tagsOff := cuesOff - 10*kib
	head2Off := tagsOff - 2*gib
	chaptersOff := int64(2 * gib)
	head1 := ebml(idSeekHead, seek(idCues, cuesOff-seg), seek(idTags, tagsOff-seg), seek(idSeekHead, head2Off-seg))
	head2 := ebml(idSeekHead, seek(idChapters, chaptersOff-seg), seek(idCues, cuesOff-seg))
	var b []byte
	b = append(b, header...)
	b = append(b, ebmlUnknown(idSegment)...)
	b = append(b, head1...)
	b = append(b, ebml(idVoid, make([]byte, 100))...)
	b = append(b, ebml(idInfo, make([]byte, 50))...)
	b = append(b, ebml(idTracks, make([]byte, 500))...)
	cluster := int64(len(b))
	b = append(b, ebmlUnknown(idCluster)...)
	f.put(0, b)
	f.put(cuesOff, cues)
	f.put(tagsOff, tags)
	f.put(head2Off, head2)
	f.put(chaptersOff, chapters)
	asked, res, err := steps(t, f, size, Config{Data: 1000})
	if err != nil {
		t.Fatal(err)
	}
	want := Result{
		Format: Matroska,
		Start: []Range{
			{0, cluster + 1000},
			{chaptersOff, chaptersOff + int64(len(chapters))},
			{tagsOff, tagsOff + int64(len(tags))},
		},
		Seek: []Range{{cuesOff, cuesOff + int64(len(cues))}},
	}
	if !equalResult(res, want) {
		t.Fatalf("result %+v\nwant %+v", res, want)
	}
	// The head; the Tags (the Cues come with them); the second SeekHead;
	// the Chapters.
	if len(asked) != 4 {
		t.Fatalf("asked %v, want 4 reads", asked)
	}
}

func TestWebMAndMatroskaErrors(t *testing.T) {
	header := ebml(idEBML, ebml(idDocType, []byte("webm")))
	cluster := ebmlUnknown(idCluster)
	good := bytes.Join([][]byte{header, ebml(idSegment, ebml(idTracks, make([]byte, 10)), cluster, make([]byte, 100))}, nil)
	_, res, err := steps(t, bytes.NewReader(good), int64(len(good)), Config{})
	if err != nil || res.Format != WebM || len(res.Seek) != 0 || len(res.Start) != 1 {
		t.Fatalf("webm: %+v, %v", res, err)
	}
	wrongID := bytes.Join([][]byte{header, ebml(idSegment, ebml(idSeekHead, seek(idCues, 60)), cluster, make([]byte, 100))}, nil)
	tests := []struct {
		name string
		file []byte
	}{
		{"zero byte ID", append(bytes.Clone(header), 0x00, 0x81, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0)},
		{"huge EBML header", append(ebml(idEBML, make([]byte, maxHeader+1)), make([]byte, 20)...)},
		{"no Segment", append(bytes.Clone(header), ebml(idTracks, make([]byte, 10))...)},
		{"element past the Segment", bytes.Join([][]byte{header, ebml(idSegment, []byte{0x16, 0x54, 0xAE, 0x6B, 0x85, 0, 0}), make([]byte, 100)}, nil)},
		{"SeekHead points to the wrong element", wrongID},
	}
	for _, tt := range tests {
		_, res, err := steps(t, bytes.NewReader(tt.file), int64(len(tt.file)), Config{})
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: error %v, want ErrMalformed", tt.name, err)
		}
		if res.Format != WebM && res.Format != Matroska {
			t.Errorf("%s: format %v", tt.name, res.Format)
		}
	}
}

// riff builds a RIFF chunk (or a LIST when typ is not empty).
func riff(id, typ string, payload ...[]byte) []byte {
	body := append([]byte(typ), bytes.Join(payload, nil)...)
	b := append([]byte(id), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
	b = append(b, body...)
	if len(body)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

// superIndex builds an OpenDML 'indx' chunk of index-of-indexes entries.
func superIndex(entries ...Range) []byte {
	var b []byte
	b = binary.LittleEndian.AppendUint16(b, 4) // longs per entry
	b = append(b, 0, 0)                        // sub type, AVI_INDEX_OF_INDEXES
	b = binary.LittleEndian.AppendUint32(b, uint32(len(entries)))
	b = append(b, "00dc"...)
	b = append(b, make([]byte, 12)...)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint64(b, uint64(e.Off))
		b = binary.LittleEndian.AppendUint32(b, uint32(e.Len()))
		b = binary.LittleEndian.AppendUint32(b, 25)
	}
	return riff("indx", "", b)
}

func TestAVIOpenDML(t *testing.T) {
	const size = 5 * gib
	f := &sparse{size: size}
	ix0 := Range{1 * gib, 1*gib + 4000}
	ix1 := Range{4*gib + 12345, 4*gib + 12345 + 8000}
	hdrl := riff("LIST", "hdrl", riff("avih", "", make([]byte, 56)),
		riff("LIST", "strl", riff("strh", "", make([]byte, 56)), riff("strf", "", make([]byte, 41)), superIndex(ix0, ix1, Range{size, size + 10})))
	movi := int64(12 + len(hdrl))
	moviList := riff("LIST", "movi", riff("00dc", "", make([]byte, 1001)))
	idx1Off := movi + int64(len(moviList))
	idx1 := riff("idx1", "", make([]byte, 16))
	body := bytes.Join([][]byte{hdrl, moviList, idx1}, nil)
	f.put(0, riff("RIFF", "AVI ", body))
	asked, res, err := steps(t, f, size, Config{Data: 100})
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Format: AVI, Start: []Range{
		{0, movi + 12 + 100},
		{idx1Off, idx1Off + int64(len(idx1))},
		ix0, ix1,
	}}
	if !equalResult(res, want) || len(asked) != 1 {
		t.Fatalf("result %+v after %d reads\nwant %+v after 1", res, len(asked), want)
	}
}

func TestAVIErrors(t *testing.T) {
	hdrl := riff("LIST", "hdrl", riff("avih", "", make([]byte, 56)))
	movi := riff("LIST", "movi", riff("00dc", "", make([]byte, 100)))
	tests := []struct {
		name string
		file []byte
		want error
	}{
		{"no index", riff("RIFF", "AVI ", hdrl, movi), ErrNoIndex},
		{"no movi", riff("RIFF", "AVI ", hdrl, riff("idx1", "", make([]byte, 16))), ErrMalformed},
		{"chunk past the end", riff("RIFF", "AVI ", hdrl, []byte("JUNK\xff\xff\x00\x00"), movi), ErrMalformed},
		{"hdrl too large", riff("RIFF", "AVI ", riff("LIST", "hdrl", make([]byte, maxRead+2)), movi), ErrMalformed},
	}
	for _, tt := range tests {
		_, res, err := steps(t, bytes.NewReader(tt.file), int64(len(tt.file)), Config{})
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.want)
		}
		if res.Format != AVI || len(res.Start) == 0 {
			t.Errorf("%s: result %+v", tt.name, res)
		}
	}
}
