// The Go side of the migration checks (tests/go_peer.rs, run by ./e2e.sh):
// kafka-go configured the way Go ekafka configures it, writing keyed messages
// through its Hash balancer and reading with a consumer group that commits each
// message synchronously (Go ekafka's commitInterval = 0).
//
//	go-peer produce -brokers B -topic T -count N -origin go
//	go-peer consume -brokers B -topic T -group G -count N
//	go-peer throughput -brokers B -topic T -count N
//	go-peer read-throughput -brokers B -topic T -group G -count N
//
// produce writes messages i = 0..N-1 with key "key-i", value "<origin>-i" and
// headers origin=<origin>, seq=i. consume prints one JSON line per message it
// read and committed, and leaves the group after N.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: go-peer produce|consume [flags]")
	}
	flags := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	brokers := flags.String("brokers", "", "bootstrap servers, comma-separated")
	topic := flags.String("topic", "", "topic")
	group := flags.String("group", "", "consumer group (consume)")
	count := flags.Int("count", 0, "messages to write or read")
	origin := flags.String("origin", "go", "value prefix and origin header (produce)")
	timeout := flags.Duration("timeout", 60*time.Second, "how long the whole run may take")
	inFlight := flags.Int("in-flight", 16, "writes of 1,000 in flight at once (throughput)")
	if err := flags.Parse(os.Args[2:]); err != nil {
		fail(err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	addrs := strings.Split(*brokers, ",")
	switch os.Args[1] {
	case "produce":
		produce(ctx, addrs, *topic, *count, *origin)
	case "consume":
		consume(ctx, addrs, *topic, *group, *count)
	case "throughput":
		throughput(ctx, addrs, *topic, *count, *inFlight)
	case "read-throughput":
		readThroughput(ctx, addrs, *topic, *group, *count)
	default:
		fail("unknown command " + os.Args[1])
	}
}

// produce writes as a Go ekafka producer with balancer = "hash" does (kafka-go's
// Hash, FNV-1a), with requiredAcks = -1 so that nothing is lost silently.
func produce(ctx context.Context, brokers []string, topic string, count int, origin string) {
	writer := newWriter(brokers, topic, 100)
	messages := make([]kafka.Message, count)
	for i := range messages {
		messages[i] = kafka.Message{
			Key:   []byte(fmt.Sprintf("key-%d", i)),
			Value: []byte(fmt.Sprintf("%s-%d", origin, i)),
			Headers: []kafka.Header{
				{Key: "origin", Value: []byte(origin)},
				{Key: "seq", Value: []byte(strconv.Itoa(i))},
			},
		}
	}
	if err := writer.WriteMessages(ctx, messages...); err != nil {
		fail("write: " + err.Error())
	}
	if err := writer.Close(); err != nil {
		fail("close: " + err.Error())
	}
}

// The bench's writes: messages of 100 bytes in writes of 1,000.
const (
	benchMessageBytes = 100
	benchWriteSize    = 1000
	benchWarmUp       = 10000
)

// throughput writes count messages as the Rust bench's ekafka side does
// (synchronous writes of 1,000, inFlight at once, acks from all replicas),
// through a writer configured as Go ekafka configures one with batchSize =
// 1000 and batchTimeout = "10ms" (tuned: Go's defaults, 100 and 1s, are
// far slower), after a warm-up; prints {"messages":N,"seconds":S,"cpu_seconds":C}.
func throughput(ctx context.Context, brokers []string, topic string, count, inFlight int) {
	writer := newWriter(brokers, topic, benchWriteSize)
	payload := make([]byte, benchMessageBytes)
	for i := range payload {
		payload[i] = 'x'
	}
	write := func(total int) {
		slots := make(chan struct{}, inFlight)
		errs := make(chan error, inFlight)
		var wg sync.WaitGroup
		for written := 0; written < total; written += benchWriteSize {
			size := benchWriteSize
			if total-written < size {
				size = total - written
			}
			slots <- struct{}{}
			wg.Add(1)
			go func(size int) {
				defer wg.Done()
				defer func() { <-slots }()
				messages := make([]kafka.Message, size)
				for i := range messages {
					messages[i] = kafka.Message{Value: append([]byte(nil), payload...)}
				}
				if err := writer.WriteMessages(ctx, messages...); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}(size)
		}
		wg.Wait()
		select {
		case err := <-errs:
			fail("write: " + err.Error())
		default:
		}
	}
	write(benchWarmUp)
	cpuBefore := cpuSeconds()
	started := time.Now()
	write(count)
	elapsed := time.Since(started).Seconds()
	cpu := cpuSeconds() - cpuBefore
	if err := writer.Close(); err != nil {
		fail("close: " + err.Error())
	}
	line, _ := json.Marshal(map[string]float64{
		"messages": float64(count), "seconds": elapsed, "cpu_seconds": cpu,
	})
	fmt.Println(string(line))
}

// readThroughput reads count messages as a Go ekafka consumer group with
// commitInterval = "1s" does (fetch, then commit, the commits sent every
// second), timed from the first message to the last as the Rust bench times
// its sides; prints {"messages":N,"seconds":S,"cpu_seconds":C}.
func readThroughput(ctx context.Context, brokers []string, topic, group string, count int) {
	reader := newReader(brokers, topic, group, time.Second)
	var started time.Time
	var cpuBefore float64
	for i := 0; i < count; i++ {
		m, err := reader.FetchMessage(ctx)
		if err != nil {
			fail(fmt.Sprintf("fetch after %d of %d: %v", i, count, err))
		}
		if i == 0 {
			started, cpuBefore = time.Now(), cpuSeconds()
		}
		if err := reader.CommitMessages(ctx, m); err != nil {
			fail("commit: " + err.Error())
		}
	}
	elapsed := time.Since(started).Seconds()
	cpu := cpuSeconds() - cpuBefore
	if err := reader.Close(); err != nil {
		fail("close: " + err.Error())
	}
	line, _ := json.Marshal(map[string]float64{
		"messages": float64(count), "seconds": elapsed, "cpu_seconds": cpu,
	})
	fmt.Println(string(line))
}

// newWriter is a producer as Go ekafka configures one with balancer = "hash",
// batchTimeout = "10ms" and requiredAcks = -1 (so nothing is lost silently).
func newWriter(brokers []string, topic string, batchSize int) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		MaxAttempts:  10,
		BatchSize:    batchSize,
		BatchBytes:   1 << 20,
		BatchTimeout: 10 * time.Millisecond,
		ReadTimeout:  10 * time.Second,
		WriteTimeout: 10 * time.Second,
		RequiredAcks: kafka.RequireAll,
	}
}

// newReader is a consumer group member as Go ekafka configures one, its
// commits sent every commitInterval (0: each at once).
func newReader(brokers []string, topic, group string, commitInterval time.Duration) *kafka.Reader {
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers:           brokers,
		Topic:             topic,
		GroupID:           group,
		MinBytes:          1,
		MaxBytes:          1 << 20,
		MaxWait:           500 * time.Millisecond,
		HeartbeatInterval: 3 * time.Second,
		SessionTimeout:    30 * time.Second,
		RebalanceTimeout:  30 * time.Second,
		JoinGroupBackoff:  5 * time.Second,
		StartOffset:       kafka.FirstOffset,
		CommitInterval:    commitInterval,
	})
}

// cpuSeconds is the process's user and system time so far.
func cpuSeconds() float64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		fail("getrusage: " + err.Error())
	}
	seconds := func(t syscall.Timeval) float64 {
		return float64(t.Sec) + float64(t.Usec)/1e6
	}
	return seconds(usage.Utime) + seconds(usage.Stime)
}

// One message as read, for the Rust side to check.
type read struct {
	Partition int               `json:"partition"`
	Offset    int64             `json:"offset"`
	Key       string            `json:"key"`
	Value     string            `json:"value"`
	Headers   map[string]string `json:"headers"`
}

// consume reads as a Go ekafka consumer group with commitInterval = 0 does:
// fetch, then commit that message synchronously.
func consume(ctx context.Context, brokers []string, topic, group string, count int) {
	reader := newReader(brokers, topic, group, 0)
	out := json.NewEncoder(os.Stdout)
	for i := 0; i < count; i++ {
		m, err := reader.FetchMessage(ctx)
		if err != nil {
			fail(fmt.Sprintf("fetch after %d of %d: %v", i, count, err))
		}
		headers := map[string]string{}
		for _, h := range m.Headers {
			headers[h.Key] = string(h.Value)
		}
		if err := reader.CommitMessages(ctx, m); err != nil {
			fail("commit: " + err.Error())
		}
		if err := out.Encode(read{m.Partition, m.Offset, string(m.Key), string(m.Value), headers}); err != nil {
			fail("stdout: " + err.Error())
		}
	}
	if err := reader.Close(); err != nil {
		fail("close: " + err.Error())
	}
}

func fail(why string) {
	fmt.Fprintln(os.Stderr, "go-peer:", why)
	os.Exit(1)
}
