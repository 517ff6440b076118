package channel

import (
	"errors"
	"testing"

	"github.com/embraft/embraft/transport"
)

func TestInboxBoundDropsAndCounts(t *testing.T) {
	n := NewNetwork(Options{InboxSize: 4})
	a, b := n.Endpoint(1), n.Endpoint(2)
	for i := 0; i < 6; i++ {
		err := a.Send(2, []byte{byte(i)})
		if want := error(nil); i >= 4 {
			if !errors.Is(err, transport.ErrQueueFull) {
				t.Fatalf("send %d into a full inbox: %v, want ErrQueueFull", i, err)
			}
		} else if err != want {
			t.Fatal(err)
		}
	}
	if got := len(b.Inbox()); got != 4 {
		t.Fatalf("inbox holds %d frames, want the bound 4", got)
	}
	if st := b.Stats(); st.DroppedFull != 2 || st.Received != 4 {
		t.Fatalf("receiver stats %+v, want 4 received, 2 dropped", st)
	}
	if f := <-b.Inbox(); f[0] != 0 {
		t.Fatalf("first frame %v", f)
	}
}

func TestSendCopiesFrame(t *testing.T) {
	n := NewNetwork(Options{})
	a, b := n.Endpoint(1), n.Endpoint(2)
	buf := []byte("abc")
	_ = a.Send(2, buf)
	buf[0] = 'x'
	if got := string(<-b.Inbox()); got != "abc" {
		t.Fatalf("received %q: the transport retained the sender's buffer", got)
	}
}

func TestDropRateAndCut(t *testing.T) {
	n := NewNetwork(Options{InboxSize: 1000, DropRate: 0.5, Seed: 1})
	a, b := n.Endpoint(1), n.Endpoint(2)
	for i := 0; i < 400; i++ {
		_ = a.Send(2, []byte{1})
	}
	got := len(b.Inbox())
	if got < 120 || got > 280 {
		t.Fatalf("with 50%% drop, %d of 400 frames arrived", got)
	}
	n.SetDropRate(0)
	n.Cut(1, 2, true)
	_ = a.Send(2, []byte{1})
	if len(b.Inbox()) != got {
		t.Fatal("a cut link delivered a frame")
	}
}

func TestClosed(t *testing.T) {
	n := NewNetwork(Options{})
	a, _ := n.Endpoint(1), n.Endpoint(2)
	_ = a.Close()
	if err := a.Send(2, []byte{1}); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
}
