package main

import (
	"os"
	"testing"
)

func TestParseStatCPU(t *testing.T) {
	t.Run("utime and stime are fields 14 and 15", func(t *testing.T) {
		stat := "4242 (piazza) S 1 4242 4242 0 -1 4194560 9876 0 0 0 250 130 0 0 20 0 12 0 123456 1500000000 9000 18446744073709551615\n"
		got, err := parseStatCPU([]byte(stat))
		if err != nil || got != 3.8 {
			t.Fatalf("got %v, %v; want 3.8 s", got, err)
		}
	})
	t.Run("a command name with spaces and parentheses", func(t *testing.T) {
		stat := "7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 100 1 0 0 20 0 1 0 1 1 1\n"
		got, err := parseStatCPU([]byte(stat))
		if err != nil || got != 1.01 {
			t.Fatalf("got %v, %v; want 1.01 s", got, err)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		if _, err := parseStatCPU([]byte("7 (x) R 1 2")); err == nil {
			t.Fatal("want an error")
		}
	})
}

func TestParseStatChildrenCPU(t *testing.T) {
	// utime 250, stime 130, cutime 40, cstime 2.
	stat := "4242 (postgres) S 1 4242 4242 0 -1 4194560 9876 0 0 0 250 130 40 2 20 0 12 0 123456 1500000000 9000\n"
	got, err := parseStatChildrenCPU([]byte(stat))
	if err != nil || got != 0.42 {
		t.Fatalf("got %v, %v; want 0.42 s", got, err)
	}
}

func TestParseStatusRSS(t *testing.T) {
	status := "Name:\tpiazza\nVmPeak:\t 1000 kB\nVmRSS:\t   41232 kB\nThreads:\t9\n"
	got, err := parseStatusRSS([]byte(status))
	if err != nil || got != 41232*1024 {
		t.Fatalf("got %d, %v", got, err)
	}
	if _, err := parseStatusRSS([]byte("Name:\tx\n")); err == nil {
		t.Error("a status without VmRSS (a zombie) must be an error")
	}
}

func TestReadProcSelf(t *testing.T) {
	s, err := readProc(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err) // Linux only
	}
	if s.RSSBytes <= 0 || s.CPUSeconds < 0 {
		t.Fatalf("implausible reading of this process: %+v", s)
	}
}

func TestParseHostCPU(t *testing.T) {
	t.Run("busy is all but idle, iowait and steal; guest time is not counted twice", func(t *testing.T) {
		stat := "cpu  1000 10 300 5000 40 20 30 5 100 0\ncpu0 500 5 150 2500 20 10 15 2 50 0\n"
		got, err := parseHostCPU([]byte(stat))
		// user+nice+system+irq+softirq = 1360 ticks; steal 5; with idle and iowait, 6405.
		if err != nil || got.busy != 13.6 || got.steal != 0.05 || got.total != 64.05 {
			t.Fatalf("got %+v, %v; want busy 13.6 s and steal 0.05 s of 64.05 s", got, err)
		}
	})
	t.Run("no cpu line", func(t *testing.T) {
		if _, err := parseHostCPU([]byte("intr 1 2 3\n")); err == nil {
			t.Fatal("want an error")
		}
	})
}

func TestPostgresCPU(t *testing.T) {
	// The machine's PostgreSQL (every test run has one) shows up; this
	// process does not.
	m := postgresCPU()
	if len(m) == 0 {
		t.Fatal("no postgres process found")
	}
	if _, ok := m[os.Getpid()]; ok {
		t.Error("the test process counted as postgres")
	}
}
