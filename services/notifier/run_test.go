package notifier

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/localeurope/piazza/pkg/app"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/bus/bustest"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/localeurope/piazza/services/contract"
	"github.com/nats-io/nats.go/jetstream"
)

// startRun runs the notifier as the piazza binary does and returns its base URL.
func startRun(tb testing.TB, dbURL string, js jetstream.JetStream) string {
	tb.Helper()
	log := testLog(tb)
	mux := http.NewServeMux()
	srv := httptest.NewServer(web.Middleware{Log: log}.Wrap(mux))
	tb.Cleanup(srv.Close)
	var (
		mu         sync.Mutex
		onShutdown []func()
	)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	var once sync.Once
	var runErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		runErr = Run(ctx, app.Deps{
			Log: log, DatabaseURL: dbURL, JS: js, StreamReplicas: 1, Mux: mux, Health: web.NewHealth(),
			AllowedOrigins: []string{allowedOrigin},
			Now:            time.Now,
			Ready:          func() { once.Do(func() { close(ready) }) },
			OnShutdown: func(f func()) {
				mu.Lock()
				onShutdown = append(onShutdown, f)
				mu.Unlock()
			},
		})
	}()
	tb.Cleanup(func() {
		mu.Lock()
		for _, f := range onShutdown {
			f()
		}
		mu.Unlock()
		cancel()
		select {
		case <-done:
			if runErr != nil {
				tb.Errorf("notifier.Run: %v", runErr)
			}
		case <-time.After(40 * time.Second):
			tb.Errorf("notifier.Run did not return after cancel")
		}
	})
	select {
	case <-ready:
	case <-done:
		tb.Fatalf("notifier.Run returned before ready: %v", runErr)
	case <-time.After(60 * time.Second):
		tb.Fatal("notifier.Run not ready after 60s")
	}
	return srv.URL
}

func stallEvent(tb testing.TB, vendorID string) (bus.Event, contract.StallRegisteredV1) {
	tb.Helper()
	s := contract.StallRegisteredV1{
		ApplicationID: uuid.NewString(), City: "ghent", MarketDayID: uuid.NewString(), MarketID: uuid.NewString(),
		MarketName: "Boerenmarkt Groentenmarkt", PlaceID: uuid.NewString(), PlaceName: "Groentenmarkt", Date: "2026-05-02",
		VendorID: vendorID, VendorName: "Hoeve De Vlier", VendorKind: "farmer", Pitch: "A1",
		RegisteredAt: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC), Version: 1,
	}
	ev, err := bus.NewEvent(contract.SourceListings, contract.TypeStallRegistered, "applications/"+s.ApplicationID, s)
	if err != nil {
		tb.Fatal(err)
	}
	return ev, s
}

func TestRun(t *testing.T) {
	ctx := context.Background()
	dbURL := newDatabase(t)
	pool := openPool(t, dbURL)
	_, js := bustest.Connect(t)
	base := startRun(t, dbURL, js)
	ws := wsURL(base, "/api/v1/notifier/ws")
	subject := contract.ListingsSubject("ghent", "stall", "registered")

	publish := func(t *testing.T, ev bus.Event, msgID string) *jetstream.PubAck {
		t.Helper()
		msg := ev.Msg(subject)
		if msgID != "" {
			msg.Header[bus.HdrMsgID] = []string{msgID}
		}
		ack, err := js.PublishMsg(ctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		return ack
	}
	settled := func(t *testing.T, seq uint64) {
		t.Helper()
		eventually(t, "notifier consumer caught up", func() bool {
			c, err := js.Consumer(ctx, contract.StreamListings, consumerListings)
			if err != nil {
				return false
			}
			info, err := c.Info(ctx)
			return err == nil && info.AckFloor.Stream >= seq && info.NumAckPending == 0 && info.NumPending == 0
		})
	}

	v1, v2 := uuid.NewString(), uuid.NewString()
	c := dial(t, ws, nil)
	from := c.subscribe("city:ghent", "vendor:"+v1)
	ev, stall := stallEvent(t, v1)
	first := publish(t, ev, "")
	var got serverMsg

	t.Run("a stall.registered event becomes one notification on the websocket", func(t *testing.T) {
		got = c.nextOf("notification")
		n := got.Notification
		if got.Seq <= from {
			t.Errorf("notification seq %d, want more than the subscribed position %d", got.Seq, from)
		}
		var data StallRegisteredData
		if err := json.Unmarshal(n.Data, &data); err != nil {
			t.Fatal(err)
		}
		wantTopics := []string{"city:ghent", "place:" + stall.PlaceID, "market:" + stall.MarketID, "vendor:" + v1}
		if n.Kind != "stall.registered" || n.City != "ghent" || strings.Join(n.Topics, " ") != strings.Join(wantTopics, " ") ||
			data.VendorID != v1 || data.Pitch != "A1" || data.MarketDayID != stall.MarketDayID || data.Date != "2026-05-02" {
			t.Errorf("notification = %+v with data %+v", n, data)
		}
	})

	t.Run("a redelivered event makes no second notification", func(t *testing.T) {
		again := publish(t, ev, "")
		if !again.Duplicate {
			t.Errorf("republishing with the same Nats-Msg-Id was not dropped as a duplicate")
		}
		redelivered := publish(t, ev, "redelivery-of-"+ev.ID)
		if redelivered.Duplicate || redelivered.Sequence == first.Sequence {
			t.Fatal("the redelivery did not reach the stream")
		}
		settled(t, redelivered.Sequence)
		// A barrier: a duplicate notification would be in the stream before
		// this one, and so reach the client first.
		next, _ := stallEvent(t, v2)
		publish(t, next, "")
		m := c.nextOf("notification")
		var data StallRegisteredData
		if err := json.Unmarshal(m.Notification.Data, &data); err != nil {
			t.Fatal(err)
		}
		if data.VendorID != v2 || m.Seq != got.Seq+1 {
			t.Errorf("next notification is seq %d for vendor %s, want seq %d for %s", m.Seq, data.VendorID, got.Seq+1, v2)
		}
		if n := count(t, pool, `SELECT count(*) FROM notifications WHERE cause_id = $1`, ev.ID); n != 1 {
			t.Errorf("%d notifications caused by the event, want 1", n)
		}
		if n := count(t, pool, `SELECT count(*) FROM inbox WHERE consumer = $1 AND event_id = $2`, consumerListings, ev.ID); n != 1 {
			t.Errorf("inbox holds the event %d times, want 1", n)
		}
		eventually(t, "outbox drained", func() bool {
			return count(t, pool, `SELECT count(*) FROM outbox WHERE published_at IS NULL`) == 0
		})
		info, err := js.Stream(ctx, contract.StreamNotifications)
		if err != nil {
			t.Fatal(err)
		}
		if n := info.CachedInfo().State.Msgs; n != 2 {
			t.Errorf("NOTIFICATIONS holds %d messages, want 2", n)
		}
	})

	t.Run("after unsubscribing, a client hears only of the topics it kept", func(t *testing.T) {
		v3 := uuid.NewString()
		c.unsubscribe("city:ghent", "vendor:"+v1)
		c.subscribe("vendor:" + v3)
		quiet, _ := stallEvent(t, v1)
		publish(t, quiet, "")
		loud, _ := stallEvent(t, v3)
		publish(t, loud, "")
		m := c.nextOf("notification")
		var data StallRegisteredData
		if err := json.Unmarshal(m.Notification.Data, &data); err != nil {
			t.Fatal(err)
		}
		if data.VendorID != v3 {
			t.Errorf("got a notification for vendor %s, want only %s's", data.VendorID, v3)
		}
	})

	t.Run("a late subscriber starts at the current position", func(t *testing.T) {
		late := dial(t, ws, nil)
		eventually(t, "all notifications dispatched", func() bool {
			info, err := js.Stream(ctx, contract.StreamNotifications)
			return err == nil && info.CachedInfo().State.Msgs == 4
		})
		eventually(t, "the late subscriber's position is the stream's end", func() bool {
			late.send(map[string]any{"type": "subscribe", "topics": []string{"city:bologna"}})
			return late.nextOf("subscribed").Seq == 4
		})
	})

	for _, tt := range []struct {
		name, origin string
		status       int
	}{
		{"a foreign Origin is refused with 403", "https://evil.example", http.StatusForbidden},
		{"the server's own Origin is accepted", base, http.StatusSwitchingProtocols},
		{"an allow-listed Origin is accepted", allowedOrigin, http.StatusSwitchingProtocols},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn, res, err := websocket.DefaultDialer.Dial(ws, http.Header{"Origin": {tt.origin}})
			if conn != nil {
				conn.Close()
			}
			if res == nil {
				t.Fatalf("dial: %v", err)
			}
			if res.StatusCode != tt.status {
				t.Errorf("upgrade with Origin %s = %d, want %d", tt.origin, res.StatusCode, tt.status)
			}
		})
	}
}
