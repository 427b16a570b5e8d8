package tracker

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestTiersShuffleWithinTiersOnly(t *testing.T) {
	in := [][]string{{"a1", "a2", "a3", "a4"}, {}, {"b1", "", "b2"}, {"a1", "c1"}}
	seen := map[string]bool{}
	for seed := range uint64(200) {
		tr := NewTiers(in, rand.New(rand.NewPCG(seed, 1)))
		got := tr.Tiers()
		if len(got) != 3 {
			t.Fatalf("tiers %v: empty tier kept", got)
		}
		a, b, c := slices.Sorted(slices.Values(got[0])), slices.Sorted(slices.Values(got[1])), got[2]
		if !slices.Equal(a, []string{"a1", "a2", "a3", "a4"}) || !slices.Equal(b, []string{"b1", "b2"}) ||
			!slices.Equal(c, []string{"c1"}) {
			t.Fatalf("tiers %v: URLs moved between tiers, or duplicates/empties kept", got)
		}
		if tr.Len() != 7 || !slices.Equal(tr.URLs(), slices.Concat(got...)) {
			t.Fatalf("URLs %v do not follow tiers %v", tr.URLs(), got)
		}
		seen[got[0][0]] = true
	}
	if len(seen) != 4 {
		t.Fatalf("first tier never shuffled: first URLs seen %v", seen)
	}
	// The input is not modified.
	if !slices.Equal(in[0], []string{"a1", "a2", "a3", "a4"}) {
		t.Fatalf("input changed: %v", in)
	}
}

func TestTiersSucceeded(t *testing.T) {
	tr := &Tiers{tiers: [][]string{{"a", "b", "c", "d"}, {"e", "f"}}}
	tr.Succeeded("c")
	want := [][]string{{"c", "a", "b", "d"}, {"e", "f"}}
	if got := tr.Tiers(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("after c: %v, want %v", got, want)
	}
	tr.Succeeded("f")
	tr.Succeeded("c") // already first
	tr.Succeeded("zzz")
	want = [][]string{{"c", "a", "b", "d"}, {"f", "e"}}
	if got := tr.Tiers(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := tr.URLs(); !slices.Equal(got, []string{"c", "a", "b", "d", "f", "e"}) {
		t.Fatalf("URLs %v", got)
	}
	// Tiers returns copies.
	tr.Tiers()[0][0] = "x"
	if tr.URLs()[0] != "c" {
		t.Fatal("Tiers exposed internal storage")
	}
}

func TestTiersEmpty(t *testing.T) {
	tr := NewTiers(nil, nil)
	if tr.Len() != 0 || len(tr.URLs()) != 0 {
		t.Fatal("empty tiers not empty")
	}
	tr.Succeeded("a")
}
