package bus_test

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/bus/bustest"
	"github.com/nats-io/nats.go/jetstream"
)

func TestThroughARealServer(t *testing.T) {
	nc, js := bustest.Connect(t)
	ctx := testContext(t)

	t.Run("headers keep their lower-case names and the event decodes unchanged", func(t *testing.T) {
		sub, err := nc.SubscribeSync("wire.>")
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		want := sampleEvent(t)
		if err := nc.PublishMsg(want.Msg("wire.ghent.stall.checked_in")); err != nil {
			t.Fatal(err)
		}
		msg, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("no message arrived: %v", err)
		}
		for _, k := range []string{"ce-id", "ce-type", "ce-source", "ce-specversion", "content-type"} {
			if _, ok := msg.Header[k]; !ok {
				t.Errorf("header %q did not arrive under that exact name; got %v", k, msg.Header)
			}
		}
		got, err := bus.Decode(msg)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		assertSameEvent(t, got, want)
	})

	t.Run("JetStream stores an event published twice only once", func(t *testing.T) {
		stream := createStream(t, js, "DEDUP", "dedup.>")
		ev := sampleEvent(t)
		first, err := js.PublishMsg(ctx, ev.Msg("dedup.ghent.stall.checked_in"))
		if err != nil {
			t.Fatalf("first publish: %v", err)
		}
		second, err := js.PublishMsg(ctx, ev.Msg("dedup.ghent.stall.checked_in"))
		if err != nil {
			t.Fatalf("second publish: %v", err)
		}
		if first.Duplicate || !second.Duplicate {
			t.Errorf("duplicate flags = %v, %v; want false, true", first.Duplicate, second.Duplicate)
		}
		if first.Sequence != second.Sequence {
			t.Errorf("the duplicate got sequence %d, the original %d", second.Sequence, first.Sequence)
		}
		if n := streamMsgs(t, stream); n != 1 {
			t.Errorf("stream holds %d messages, want 1", n)
		}
	})
}

func TestStartEmbedded(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	t.Run("refuses to start without a store directory", func(t *testing.T) {
		if _, err := bus.StartEmbedded(bus.EmbeddedOptions{}, log); err == nil {
			t.Fatal("StartEmbedded succeeded without a store directory")
		}
	})

	t.Run("chooses a free port when the asked one is taken", func(t *testing.T) {
		first, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: t.TempDir()}, log)
		if err != nil {
			t.Fatal(err)
		}
		defer first.Shutdown()
		taken := portOf(t, first.URL())
		second, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: t.TempDir(), Port: taken}, log)
		if err != nil {
			t.Fatalf("StartEmbedded on a taken port: %v", err)
		}
		defer second.Shutdown()
		if portOf(t, second.URL()) == taken {
			t.Errorf("both servers claim port %d", taken)
		}
		nc, _, err := bus.Connect(testContext(t), second.URL(), "test", log)
		if err != nil {
			t.Fatalf("Connect to the second server: %v", err)
		}
		nc.Close()
	})
}

// testContext is cancelled when the test ends, and bounds a stuck test.
func testContext(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	return ctx
}

func createStream(tb testing.TB, js jetstream.JetStream, name string, subjects ...string) jetstream.Stream {
	tb.Helper()
	s, err := js.CreateStream(testContext(tb), jetstream.StreamConfig{
		Name: name, Subjects: subjects, Storage: jetstream.MemoryStorage, Duplicates: 2 * time.Minute,
	})
	if err != nil {
		tb.Fatalf("create stream %s: %v", name, err)
	}
	return s
}

func streamMsgs(tb testing.TB, s jetstream.Stream) uint64 {
	tb.Helper()
	info, err := s.Info(testContext(tb))
	if err != nil {
		tb.Fatalf("stream info: %v", err)
	}
	return info.State.Msgs
}

func portOf(tb testing.TB, rawURL string) int {
	tb.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		tb.Fatalf("parse %q: %v", rawURL, err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		tb.Fatalf("no port in %q", rawURL)
	}
	return port
}
