package picker

// class is the rarest-first index of one priority class: the missing pieces
// of that class in buckets by availability (seeds not counted, since they
// have every piece and do not change the order).
type class struct {
	buckets [][]int32
	n       int // pieces in all buckets
}

// indexed reports whether piece i belongs in a rarest-first index.
func (p *Picker) indexed(i int) bool {
	return !p.have[i] && (p.prio[i] == Normal || p.prio[i] == HeadTail)
}

// index adds piece i to the index of its class if it belongs there.
func (p *Picker) index(i int) {
	if !p.indexed(i) {
		return
	}
	c := &p.cls[p.prio[i]]
	a := int(p.avail[i])
	for len(c.buckets) <= a {
		c.buckets = append(c.buckets, nil)
	}
	p.pos[i] = int32(len(c.buckets[a]))
	c.buckets[a] = append(c.buckets[a], int32(i))
	c.n++
}

// unindex removes piece i from the index it is in, if any. It relies on the
// piece's priority and availability being those it was indexed with.
func (p *Picker) unindex(i int) {
	k := p.pos[i]
	if k < 0 {
		return
	}
	c := &p.cls[p.prio[i]]
	a := int(p.avail[i])
	bk := c.buckets[a]
	last := bk[len(bk)-1]
	bk[k] = last
	p.pos[last] = k
	c.buckets[a] = bk[:len(bk)-1]
	p.pos[i] = -1
	c.n--
}
