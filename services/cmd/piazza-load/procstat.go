package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat. It
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// procSample is one reading of a process's CPU and memory.
type procSample struct {
	CPUSeconds float64 // utime + stime
	RSSBytes   int64
}

// readProc reads /proc/<pid>/stat and /proc/<pid>/status.
func readProc(pid int) (procSample, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procSample{}, err
	}
	cpu, err := parseStatCPU(stat)
	if err != nil {
		return procSample{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procSample{}, err
	}
	rss, err := parseStatusRSS(status)
	if err != nil {
		return procSample{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	return procSample{CPUSeconds: cpu, RSSBytes: rss}, nil
}

// parseStatCPU returns utime+stime (fields 14 and 15) in seconds from the
// contents of /proc/<pid>/stat.
func parseStatCPU(stat []byte) (float64, error) { return statSeconds(stat, 14, 15) }

// parseStatChildrenCPU returns cutime+cstime (fields 16 and 17: the CPU of
// children waited for) in seconds from the contents of /proc/<pid>/stat.
func parseStatChildrenCPU(stat []byte) (float64, error) { return statSeconds(stat, 16, 17) }

// statSeconds sums the clock-tick fields of /proc/<pid>/stat numbered as in
// proc(5), in seconds. The command name (field 2) may hold spaces and
// parentheses, so fields are counted from the last ')', after which comes
// field 3.
func statSeconds(stat []byte, fields ...int) (float64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	f := strings.Fields(string(stat[i+1:]))
	var ticks int64
	for _, n := range fields {
		if n-3 >= len(f) {
			return 0, errors.New("stat: too few fields")
		}
		v, err := strconv.ParseInt(f[n-3], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat: %w", err)
		}
		ticks += v
	}
	return float64(ticks) / clockTicks, nil
}

// parseStatusRSS returns VmRSS in bytes from the contents of
// /proc/<pid>/status.
func parseStatusRSS(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("status: VmRSS %q", rest)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("status: VmRSS: %w", err)
		}
		return kb * 1024, nil
	}
	return 0, errors.New("status: no VmRSS")
}

// hostCPU is the machine's CPU time from the first line of /proc/stat, in
// seconds summed over all CPUs: busy is everything but idle, iowait and
// steal (time the hypervisor gave to other guests), which is apart.
type hostCPU struct {
	busy, steal, total float64
}

func readHostCPU() (hostCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return hostCPU{}, err
	}
	return parseHostCPU(b)
}

func parseHostCPU(stat []byte) (hostCPU, error) {
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 6 || f[0] != "cpu" {
		return hostCPU{}, errors.New("/proc/stat: no cpu line")
	}
	var h hostCPU
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return hostCPU{}, fmt.Errorf("/proc/stat: %w", err)
		}
		// user nice system idle iowait irq softirq steal guest guest_nice;
		// guest time is already counted in user and nice.
		if i >= 8 {
			break
		}
		secs := float64(n) / clockTicks
		h.total += secs
		switch i {
		case 3, 4: // idle, iowait
		case 7:
			h.steal += secs
		default:
			h.busy += secs
		}
	}
	return h, nil
}

// postgresCPU returns the CPU seconds of every process named postgres (a
// local PostgreSQL's server and backends), by pid, each with the CPU of its
// children that ended: a backend that ends during a phase moves its time to
// the postmaster's, so the sum over a phase misses nothing.
func postgresCPU() map[int]float64 {
	m := map[int]float64{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || !bytes.Contains(stat, []byte("(postgres)")) {
			continue
		}
		own, err1 := parseStatCPU(stat)
		children, err2 := parseStatChildrenCPU(stat)
		if err1 == nil && err2 == nil {
			m[pid] = own + children
		}
	}
	return m
}
