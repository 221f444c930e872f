package calendar

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/localeurope/piazza/pkg/app"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/bus/bustest"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/localeurope/piazza/services/contract"
	"github.com/nats-io/nats.go/jetstream"
)

// eventually polls cond until it holds or the deadline passes.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startRun runs the calendar service as the piazza binary does and returns
// its base URL.
func startRun(tb testing.TB, dbURL string, js jetstream.JetStream, now time.Time) string {
	tb.Helper()
	log := testLog(tb)
	mux := http.NewServeMux()
	srv := httptest.NewServer(web.Middleware{Log: log}.Wrap(mux))
	tb.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	var once sync.Once
	var runErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		runErr = Run(ctx, app.Deps{
			Log: log, DatabaseURL: dbURL, JS: js, StreamReplicas: 1, Mux: mux, Health: web.NewHealth(),
			Now:        func() time.Time { return now },
			Ready:      func() { once.Do(func() { close(ready) }) },
			OnShutdown: func(func()) {},
		})
	}()
	tb.Cleanup(func() {
		cancel()
		select {
		case <-done:
			if runErr != nil {
				tb.Errorf("calendar.Run: %v", runErr)
			}
		case <-time.After(40 * time.Second):
			tb.Errorf("calendar.Run did not return after cancel")
		}
	})
	select {
	case <-ready:
	case <-done:
		tb.Fatalf("calendar.Run returned before ready: %v", runErr)
	case <-time.After(60 * time.Second):
		tb.Fatal("calendar.Run not ready after 60s")
	}
	return srv.URL
}

func TestRun(t *testing.T) {
	ctx := context.Background()
	berlin := mustLoad(t, "Europe/Berlin")
	dbURL := newDatabase(t)
	pool := openPool(t, dbURL)
	_, js := bustest.Connect(t)
	base := startRun(t, dbURL, js, time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))

	publish := func(t *testing.T, ev bus.Event, subject string, msgID string) *jetstream.PubAck {
		t.Helper()
		msg := ev.Msg(subject)
		if msgID != "" {
			msg.Header[bus.HdrMsgID] = []string{msgID}
		}
		ack, err := js.PublishMsg(ctx, msg)
		if err != nil {
			t.Fatalf("publish %s: %v", ev.Type, err)
		}
		return ack
	}
	// settled waits until the calendar's consumer has acked everything up to
	// stream sequence seq.
	settled := func(t *testing.T, seq uint64) {
		t.Helper()
		eventually(t, "calendar consumer caught up", func() bool {
			c, err := js.Consumer(ctx, contract.StreamListings, consumerName)
			if err != nil {
				return false
			}
			info, err := c.Info(ctx)
			return err == nil && info.AckFloor.Stream >= seq && info.NumAckPending == 0 && info.NumPending == 0
		})
	}

	publish(t, cityEvent(t, "berlin", "Europe/Berlin", 1), contract.ListingsSubject("berlin", "city", "upserted"), "")
	d := marketDay("berlin", "Wochenmarkt", at(t, berlin, "2026-05-02 08:00"), at(t, berlin, "2026-05-02 13:00"), 1)
	ev := marketDayEvent(t, d)
	subject := contract.ListingsSubject("berlin", "market_day", "scheduled")
	first := publish(t, ev, subject, "")

	t.Run("a market day published to LISTINGS appears on the calendar", func(t *testing.T) {
		eventually(t, "the market day on the calendar", func() bool {
			status, _, _ := get(t, base+"/api/v1/calendar/cities/berlin/events?from=2026-05-02&to=2026-05-02")
			if status != http.StatusOK {
				return false
			}
			p := getEvents(t, base+"/api/v1/calendar/cities/berlin/events?from=2026-05-02&to=2026-05-02")
			return len(p.Items) == 1 && p.Items[0].ID == d.ID
		})
	})

	t.Run("a republished event is dropped by the stream's duplicate window", func(t *testing.T) {
		again := publish(t, ev, subject, "")
		if !again.Duplicate || again.Sequence != first.Sequence {
			t.Errorf("republish ack = %+v, want a duplicate of sequence %d", again, first.Sequence)
		}
	})

	t.Run("a redelivered event (same ce-id, new Nats-Msg-Id) is processed once", func(t *testing.T) {
		_, updated := entry(t, pool, d.ID)
		redelivered := publish(t, ev, subject, "redelivery-of-"+ev.ID)
		if redelivered.Duplicate {
			t.Fatal("the stream dropped the redelivery; it must reach the consumer")
		}
		settled(t, redelivered.Sequence)
		if n := count(t, pool, `SELECT count(*) FROM entries`); n != 1 {
			t.Errorf("%d entries, want 1", n)
		}
		if n := count(t, pool, `SELECT count(*) FROM inbox WHERE consumer = $1 AND event_id = $2`, consumerName, ev.ID); n != 1 {
			t.Errorf("inbox holds the event %d times, want 1", n)
		}
		if _, after := entry(t, pool, d.ID); !after.Equal(updated) {
			t.Errorf("the redelivery touched the entry (updated %s → %s)", updated, after)
		}
		if n := count(t, pool, `SELECT count(*) FROM dead_letters`); n != 0 {
			t.Errorf("%d dead letters, want 0", n)
		}
	})
}
