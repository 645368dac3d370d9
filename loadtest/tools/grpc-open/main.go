// Command grpc-open is the suite's open-loop gRPC generator: unary calls at a constant arrival rate through
// grpc-go, the client most services outside Node use, with latency counted from each call's scheduled time.
//
//	grpc-open -target 127.0.0.1:8081 -requests FILE -rate 800 -duration 10 -connections 4 -deadline-ms 1000 -out FILE
//
// FILE of requests: records of (uint16 big-endian path length, path, uint32 big-endian body length, body), the
// serialized messages sent as they are (never decoded or re-encoded), taken round-robin. Call i is due at
// start + i/rate whether or not earlier calls answered; a call that starts late carries the lag in its latency
// (no coordinated omission). Each call has the deadline -deadline-ms (sent as grpc-timeout, enforced by the client
// too, as any grpc-go client does). Answers are not decoded: only the status is kept.
//
// The first three distinct messages of each unexpected status (anything but DEADLINE_EXCEEDED and
// RESOURCE_EXHAUSTED) go to stderr.
//
// The output file holds one line per call, "<grpc status code> <latency in ns> <start lag in ns>", status 17 for a
// call refused by the client itself because -max-inflight calls were outstanding. The start lag is how late the
// pacer started the call after its due time: the generator's own share of its latency.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// reported counts the messages written to stderr per status code (reportOnce).
var reported sync.Map

// reportOnce writes the first three distinct messages of each status a call ended with, other than the ones an
// overloaded server is expected to give (DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED), to stderr: what the output file's
// bare codes do not say.
func reportOnce(s *status.Status) {
	c := s.Code()
	if c == codes.DeadlineExceeded || c == codes.ResourceExhausted {
		return
	}
	key := fmt.Sprintf("%d %s", c, s.Message())
	if _, seen := reported.LoadOrStore(key, true); seen {
		return
	}
	n, _ := reported.LoadOrStore(c, new(atomic.Int32))
	if n.(*atomic.Int32).Add(1) <= 3 {
		fmt.Fprintf(os.Stderr, "grpc-open: %s: %s\n", c, s.Message())
	}
}

// backlogCode marks a call the generator did not send because too many were outstanding.
const backlogCode = 17

type request struct {
	method string
	body   []byte
}

// rawCodec sends the pre-serialized bytes as they are and drops the answer's bytes.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(_ []byte, v any) error {
	*(v.(*[]byte)) = nil
	return nil
}
func (rawCodec) Name() string { return "proto" }

// sleepPrecisely blocks this thread for d. time.Sleep wakes up to a millisecond late here (the runtime's idle wait
// rounds sub-millisecond timeouts up to 1 ms), which would be added to every call's latency; nanosleep(2) with the
// thread's timer slack at 1 ns (pacer) wakes within tens of microseconds.
func sleepPrecisely(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
	}
}

// pacer makes the calling goroutine the pacer: its own OS thread, with the finest timer slack. The runtime keeps at
// least two Ps so that the calls' goroutines run while the pacer's thread sleeps in the kernel.
func pacer() {
	runtime.LockOSThread()
	const prSetTimerslack = 29
	syscall.Syscall(syscall.SYS_PRCTL, prSetTimerslack, 1, 0)
	if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
}

func readRequests(path string) ([]request, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var out []request
	for {
		var pathLen uint16
		if err := binary.Read(r, binary.BigEndian, &pathLen); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		method := make([]byte, pathLen)
		if _, err := io.ReadFull(r, method); err != nil {
			return nil, err
		}
		var bodyLen uint32
		if err := binary.Read(r, binary.BigEndian, &bodyLen); err != nil {
			return nil, err
		}
		body := make([]byte, bodyLen)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, err
		}
		out = append(out, request{method: string(method), body: body})
	}
}

func dial(target string) (*grpc.ClientConn, error) {
	cc, err := grpc.NewClient("passthrough:///"+target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// As the suite's other gRPC client: 1 MiB windows (fixed windows also turn off BDP probing).
		grpc.WithInitialWindowSize(1<<20),
		grpc.WithInitialConnWindowSize(1<<20),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})),
	)
	if err != nil {
		return nil, err
	}
	// Connect before the clock starts, so that no call's latency holds a connection's set-up.
	cc.Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for s := cc.GetState(); s != connectivity.Ready; s = cc.GetState() {
		if !cc.WaitForStateChange(ctx, s) {
			cc.Close()
			return nil, fmt.Errorf("%s: not ready within 10 s (state %v)", target, s)
		}
	}
	return cc, nil
}

func main() {
	target := flag.String("target", "", "host:port")
	requestsFile := flag.String("requests", "", "file of requests (see the package comment)")
	rate := flag.Float64("rate", 0, "calls per second")
	duration := flag.Float64("duration", 0, "seconds")
	connections := flag.Int("connections", 4, "HTTP/2 connections, calls round-robin over them")
	deadlineMs := flag.Float64("deadline-ms", 1000, "each call's deadline")
	maxInflight := flag.Int("max-inflight", 20000, "most calls outstanding at once; later ones are counted as status 17")
	outFile := flag.String("out", "", "results file")
	flag.Parse()
	if *target == "" || *requestsFile == "" || *rate <= 0 || *duration <= 0 || *outFile == "" {
		flag.Usage()
		os.Exit(2)
	}
	// Fewer collections: the generator shares its core with what it measures against, and memory is no concern
	// here (GOGC=400 took ~4% less CPU per call than the default at 5,949 calls/s). GOGC in the environment wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	reqs, err := readRequests(*requestsFile)
	if err != nil || len(reqs) == 0 {
		fmt.Fprintf(os.Stderr, "grpc-open: requests %s: %v (%d read)\n", *requestsFile, err, len(reqs))
		os.Exit(1)
	}
	conns := make([]*grpc.ClientConn, max(1, *connections))
	for i := range conns {
		if conns[i], err = dial(*target); err != nil {
			fmt.Fprintf(os.Stderr, "grpc-open: %v\n", err)
			os.Exit(1)
		}
	}

	total := int(math.Round(*rate * *duration))
	codes := make([]uint8, total)
	latencies := make([]int64, total)
	lags := make([]int64, total)
	deadline := time.Duration(*deadlineMs * float64(time.Millisecond))
	var inflight atomic.Int64
	var wg sync.WaitGroup
	pacer()
	start := time.Now()
	for i := 0; i < total; i++ {
		due := start.Add(time.Duration(float64(i) * float64(time.Second) / *rate))
		if wait := time.Until(due); wait > 0 {
			sleepPrecisely(wait)
		}
		lags[i] = int64(time.Since(due))
		if inflight.Load() >= int64(*maxInflight) {
			codes[i], latencies[i] = backlogCode, int64(time.Since(due))
			continue
		}
		inflight.Add(1)
		wg.Add(1)
		go func(i int, due time.Time, req request, cc *grpc.ClientConn) {
			defer wg.Done()
			defer inflight.Add(-1)
			ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(deadline))
			defer cancel()
			var reply []byte
			err := cc.Invoke(ctx, req.method, &req.body, &reply)
			latencies[i] = int64(time.Since(due))
			codes[i] = uint8(status.Code(err))
			if err != nil {
				reportOnce(status.Convert(err))
			}
		}(i, due, reqs[i%len(reqs)], conns[i%len(conns)])
	}
	// Let the last interval elapse, then wait for the calls still out (each ends by its deadline).
	if rest := time.Until(start.Add(time.Duration(*duration * float64(time.Second)))); rest > 0 {
		time.Sleep(rest)
	}
	wg.Wait()
	for _, cc := range conns {
		cc.Close()
	}

	f, err := os.Create(*outFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "grpc-open: %v\n", err)
		os.Exit(1)
	}
	w := bufio.NewWriterSize(f, 1<<16)
	for i := range total {
		fmt.Fprintf(w, "%d %d %d\n", codes[i], latencies[i], lags[i])
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintf(os.Stderr, "grpc-open: %v\n", err)
		os.Exit(1)
	}
	f.Close()
}
