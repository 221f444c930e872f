package notifier

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/bus/bustest"
	"github.com/localeurope/piazza/pkg/web"
)

func TestHello(t *testing.T) {
	dbURL := newDatabase(t)
	_, js := bustest.Connect(t)
	base := startRun(t, dbURL, js)

	t.Run("a device that says hello with follows is subscribed to what it follows", func(t *testing.T) {
		me := residentClient{tb: t, base: base, device: uuid.NewString()}
		for _, topic := range []string{"city:ghent", "market:m1"} {
			if code, _ := me.do("PUT", "/api/v1/notifier/follows/"+topic, nil); code != 200 {
				t.Fatalf("follow %s: %d", topic, code)
			}
		}
		c := dial(t, wsURL(base, "/api/v1/notifier/ws"), nil)
		c.send(map[string]any{"type": "hello", "device": me.device, "follows": true})
		if m := c.nextOf("welcome"); m.Type != "welcome" {
			t.Fatal(m)
		}
		sub := c.nextOf("subscribed")
		if len(sub.Topics) != 2 {
			t.Fatalf("subscribed to %v, want the two follows", sub.Topics)
		}
	})
	t.Run("an anonymous hello only greets", func(t *testing.T) {
		c := dial(t, wsURL(base, "/api/v1/notifier/ws"), nil)
		c.send(map[string]any{"type": "hello"})
		c.nextOf("welcome")
		c.send(map[string]any{"type": "hello", "device": "nope"})
		if m := c.nextOf("error"); m.Code != "bad_device" {
			t.Fatalf("bad device: %+v", m)
		}
	})

	t.Run("a hello with a token speaks for the account; a bad token is refused", func(t *testing.T) {
		key, err := auth.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		v := auth.NewVerifier(nil)
		v.SetKey(key.ID, key.Public())
		ws := newWSHandler(NewHub(0, newHubMetrics(nil)), nil, testLog(t))
		ws.verifier = v
		mux := http.NewServeMux()
		mux.Handle("GET /api/v1/notifier/ws", ws)
		srv := httptest.NewServer(web.Middleware{Log: testLog(t)}.Wrap(mux))
		t.Cleanup(srv.Close)
		tok, _, err := key.Sign(auth.Principal{AccountID: uuid.NewString(), Roles: []string{"vendor"}}, time.Now(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		c := dial(t, wsURL(srv.URL, "/api/v1/notifier/ws"), nil)
		c.send(map[string]any{"type": "hello", "token": tok + "x"})
		if m := c.nextOf("error"); m.Code != "bad_token" {
			t.Fatalf("bad token: %+v", m)
		}
		c.send(map[string]any{"type": "hello", "token": tok})
		var welcome struct {
			Resident string `json:"resident"`
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		if err := c.conn.ReadJSON(&welcome); err != nil || welcome.Resident != "account" {
			t.Fatalf("welcome = %+v, %v; want resident account", welcome, err)
		}
		c.nextOf("subscribed") // to the account's own topic

		// Signed out on the same connection: the account's topic is dropped,
		// so its private notifications stop there.
		account := "account:" + mustSubject(t, v, tok)
		if n := ws.hub.subscriberCount(account); n != 1 {
			t.Fatalf("%d subscribers of %s after the signed-in hello, want 1", n, account)
		}
		c.send(map[string]any{"type": "hello", "device": uuid.NewString()})
		c.nextOf("welcome")
		eventually(t, "the account's topic is dropped", func() bool { return ws.hub.subscriberCount(account) == 0 })
	})
}

func mustSubject(tb testing.TB, v *auth.Verifier, tok string) string {
	tb.Helper()
	p, err := v.Verify(tok)
	if err != nil {
		tb.Fatal(err)
	}
	return p.AccountID
}
