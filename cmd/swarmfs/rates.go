package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/dustin/go-humanize"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
)

var (
	_ library.RateLimiter = (*engineLibrary)(nil)
	_ library.RateLimiter = (*mountLibrary)(nil) // set-rate reaches a living mount too
)

// RateLimits returns the engine's upload and download caps.
func (l *engineLibrary) RateLimits() library.RateLimits {
	up, down := l.c.RateLimits()
	return library.RateLimits{Up: up, Down: down}
}

// SetRateLimits changes the engine's upload and download caps.
func (l *engineLibrary) SetRateLimits(r library.RateLimits) error {
	if r.Up > maxRate || r.Down > maxRate {
		return fmt.Errorf("rate limits must be at most %s per second", humanize.IBytes(maxRate))
	}
	return l.c.SetRateLimits(r.Up, r.Down)
}

var setRateCommand = &command{
	summary: "change the upload and download rate limits of a running mount or server",
	usage:   "[--up SIZE] [--down SIZE] MOUNTPOINT|URL  (SIZE per second; 0 means unlimited; without flags, print them)",
	examples: []string{
		"swarmfs set-rate --up 1MiB --down 10MiB ~/t",
		"swarmfs set-rate --up 0 http://127.0.0.1:8080   # lift the upload cap",
		"swarmfs set-rate ~/t   # show the limits",
	},
	flagSet: func() *flag.FlagSet { f, _, _ := setRateFlags(); return f },
	run:     runSetRate,
}

// setRateFlags builds the flags of set-rate; up and down stay nil unless
// given.
func setRateFlags() (f *flag.FlagSet, up, down **byteSize) {
	f = ctlFlags("set-rate")
	var u, d *byteSize
	f.Func("up", "upload cap, `SIZE` per second such as 2MiB; 0 lifts it", func(s string) error {
		u = new(byteSize)
		return u.Set(s)
	})
	f.Func("down", "download cap, `SIZE` per second such as 10MiB; 0 lifts it", func(s string) error {
		d = new(byteSize)
		return d.Set(s)
	})
	return f, &u, &d
}

func runSetRate(ctx context.Context, e *env, args []string) error {
	f, up, down := setRateFlags()
	pos, err := parseFlags(f, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("want a mountpoint or URL")
	}
	for _, v := range []*byteSize{*up, *down} {
		if v != nil && *v > maxRate {
			return usageError("a rate must be at most %s per second", humanize.IBytes(maxRate))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, ctlTimeout)
	defer cancel()
	c, err := dialControl(ctx, f, pos[0])
	if err != nil {
		return err
	}
	defer c.Close()
	var set *library.RateLimits
	if *up != nil || *down != nil {
		cur, err := c.Rates(ctx, nil)
		if err != nil {
			return err
		}
		if *up != nil {
			cur.Up = int64(**up)
		}
		if *down != nil {
			cur.Down = int64(**down)
		}
		set = &cur
	}
	r, err := c.Rates(ctx, set)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "upload %s, download %s\n", rateString(r.Up), rateString(r.Down))
	return nil
}

// rateString prints a rate limit for people.
func rateString(r int64) string {
	if r == 0 {
		return "unlimited"
	}
	return humanize.IBytes(uint64(r)) + "/s"
}
