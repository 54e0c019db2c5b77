package tui

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/decant-sh/decant/runbook"
)

// floodMain is the noisy action of the flood benchmark: it prints rate
// lines a second for the given seconds, paced every 10 ms, some of them
// coloured as build tools print them. spec is "RATE,SECONDS".
func floodMain(spec string) int {
	rateS, secsS, _ := strings.Cut(spec, ",")
	rate, _ := strconv.Atoi(rateS)
	secs, _ := strconv.ParseFloat(secsS, 64)
	w := bufio.NewWriterSize(os.Stdout, 1<<16)
	start := time.Now()
	total := int(float64(rate) * secs)
	n := 0
	for n < total {
		owed := min(total, int(time.Since(start).Seconds()*float64(rate)))
		for ; n < owed; n++ {
			if n%10 == 0 {
				fmt.Fprintf(w, "copy chunk %08d \x1b[32mOK\x1b[0m rows=1000 bytes=65536 table=shop.orders\n", n)
			} else {
				fmt.Fprintf(w, "copy chunk %08d rows=1000 bytes=65536 table=shop.orders checksum=9f86d081884c7d65\n", n)
			}
		}
		_ = w.Flush()
		time.Sleep(10 * time.Millisecond)
	}
	_ = w.Flush()
	return 0
}

// probeModel times key presses: from just before Program.Send to the end
// of the View call that draws the key's effect.
type probeModel struct {
	m       *model
	sent    atomic.Int64
	pending atomic.Bool
	lat     chan time.Duration
}

func (p *probeModel) Init() tea.Cmd { return p.m.Init() }

func (p *probeModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	_, cmd := p.m.Update(msg)
	if k, ok := msg.(tea.KeyPressMsg); ok && k.Text == "F" {
		p.pending.Store(true)
	}
	return p, cmd
}

func (p *probeModel) View() tea.View {
	v := p.m.View()
	if p.pending.Swap(false) {
		p.lat <- time.Since(time.Unix(0, p.sent.Load()))
	}
	return v
}

type countWriter struct{ n atomic.Int64 }

func (c *countWriter) Write(b []byte) (int, error) { c.n.Add(int64(len(b))); return len(b), nil }

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkLogFlood runs the real UI (renderer included, output counted
// and discarded) over a real engine and journal while a shell step prints
// DECANT_FLOOD_RATE lines a second (default 50000) for DECANT_FLOOD_SECS
// (default 5). A prober presses F every 20 ms and times each press to the
// frame that shows it (F changes one status line, so the terminal output
// measures the flood, not the probe). Figures: key latency idle and under
// flood, lines/s journaled, events/s reaching the UI, peak heap, terminal
// output.
//
//	go test ./tui -run '^$' -bench LogFlood -benchtime 1x
func BenchmarkLogFlood(b *testing.B) {
	rate, secs := 50000, 5.0
	if v, err := strconv.Atoi(os.Getenv("DECANT_FLOOD_RATE")); err == nil {
		rate = v
	}
	if v, err := strconv.ParseFloat(os.Getenv("DECANT_FLOOD_SECS"), 64); err == nil {
		secs = v
	}
	bin, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		floodOnce(b, bin, rate, secs)
	}
}

func floodOnce(b *testing.B, bin string, rate int, secs float64) {
	dir := b.TempDir()
	b.Setenv("DECANT_TUI_FLOOD", fmt.Sprintf("%d,%g", rate, secs))
	b.Setenv("FLOOD_BIN", bin)
	rbPath := filepath.Join(dir, "rb.yaml")
	src := testHeader + `  - name: copy
    steps:
      - id: flood
        shell: source
        run: exec "$FLOOD_BIN"
      - id: other
        shell: source
        run: "true"
`
	if err := os.WriteFile(rbPath, []byte(src), 0o600); err != nil {
		b.Fatal(err)
	}
	rb, err := runbook.Load(rbPath)
	if err != nil {
		b.Fatal(err)
	}
	e, err := runbook.Open(rb, runbook.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := newApp(ctx, e, nil, Options{Glyphs: "unicode"})
	pm := &probeModel{m: a.model, lat: make(chan time.Duration, 1<<16)}
	out := &countWriter{}
	p := tea.NewProgram(pm, tea.WithInput(nil), tea.WithOutput(out), tea.WithoutSignalHandler(),
		tea.WithWindowSize(120, 40), tea.WithFPS(30))
	a.start(p.Send)
	done := make(chan error, 1)
	go func() { _, err := p.Run(); done <- err }()

	probe := func(d time.Duration) []time.Duration {
		var got []time.Duration
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			pm.sent.Store(time.Now().UnixNano())
			p.Send(tea.KeyPressMsg{Code: 'F', Text: "F"})
			select {
			case l := <-pm.lat:
				got = append(got, l)
			case <-time.After(5 * time.Second):
				b.Fatal("a key press got no frame in 5 s")
			}
			time.Sleep(20 * time.Millisecond)
		}
		return got
	}
	idle := probe(time.Second)

	var peakHeap atomic.Uint64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-t.C:
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peakHeap.Load() {
					peakHeap.Store(ms.HeapInuse)
				}
			}
		}
	}()

	recv0, out0 := a.model.received, out.n.Load()
	_ = recv0
	start := time.Now()
	p.Send(tea.KeyPressMsg{Code: 'n', Text: "n"})
	var flood []time.Duration
	for e.State("flood").Status != runbook.StatusDone {
		if time.Since(start) > time.Duration(secs*float64(time.Second))*6+30*time.Second {
			b.Fatalf("flood step did not finish: %s", e.State("flood").Status)
		}
		flood = append(flood, probe(200*time.Millisecond)...)
	}
	took := time.Since(start)
	outBytes := out.n.Load() - out0
	close(stopSampling)
	<-sampled

	p.Quit()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	a.stop(cancel, 10*time.Second)
	if err := e.Close(); err != nil {
		b.Fatal(err)
	}
	received := a.model.received // the program has stopped: no race
	st := e.State("flood")

	evs, err := runbook.ReadJournal(rbPath)
	if err != nil {
		b.Fatal(err)
	}
	journaled := 0
	for _, ev := range evs {
		if ev.Type == runbook.EvLog && ev.Step == "flood" {
			journaled++
		}
	}
	stepSecs := st.Ended.Sub(st.Started).Seconds()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)

	ms2 := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms2(pct(idle, 0.5)), "idle-key-p50-ms")
	b.ReportMetric(ms2(pct(flood, 0.5)), "flood-key-p50-ms")
	b.ReportMetric(ms2(pct(flood, 0.99)), "flood-key-p99-ms")
	b.ReportMetric(ms2(pct(flood, 1)), "flood-key-max-ms")
	b.ReportMetric(float64(journaled)/stepSecs, "journaled-lines/s")
	b.ReportMetric(float64(received)/took.Seconds(), "ui-events/s")
	b.ReportMetric(float64(peakHeap.Load())/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(outBytes)/1024/took.Seconds(), "term-KiB/s")
	b.Logf("flood: %d lines asked at %d/s for %gs; journaled %d in %.2fs (%.0f lines/s); UI got %d events in %.2fs",
		int(float64(rate)*secs), rate, secs, journaled, stepSecs, float64(journaled)/stepSecs, received, took.Seconds())
	b.Logf("key->frame latency: idle p50 %.2f ms p99 %.2f ms (n=%d); flood p50 %.2f ms p99 %.2f ms max %.2f ms (n=%d)",
		ms2(pct(idle, 0.5)), ms2(pct(idle, 0.99)), len(idle), ms2(pct(flood, 0.5)), ms2(pct(flood, 0.99)), ms2(pct(flood, 1)), len(flood))
	b.Logf("memory: peak heap in use %.1f MiB during the flood, %.1f MiB live after GC; terminal output %.1f KiB/s",
		float64(peakHeap.Load())/(1<<20), float64(ms.HeapAlloc)/(1<<20), float64(outBytes)/1024/took.Seconds())
}
