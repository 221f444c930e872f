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
