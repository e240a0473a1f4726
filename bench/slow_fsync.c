// An emulated slower disk for bench/cluster_bench.py --fsync-delay-us: preloaded
// (LD_PRELOAD) into redis-server and every Quire process of the benchmark's cluster, it
// sleeps QUIRE_BENCH_FSYNC_DELAY_US microseconds after each fdatasync and fsync returns.
// The data is synced as before; only the call takes longer, as on a disk whose flushes do.
// Benchmark tooling only: never part of a Quire process outside that flag.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

static long delay_us(void) {
  const char* s = getenv("QUIRE_BENCH_FSYNC_DELAY_US");
  return s ? atol(s) : 0;
}

static void delay(void) {
  long us = delay_us();
  if (us <= 0) return;
  struct timespec t = {us / 1000000, (us % 1000000) * 1000};
  while (nanosleep(&t, &t) != 0) {
  }
}

// Calls the real `name` (looked up once into *real), then sleeps.
static int synced_then_delay(int (**real)(int), const char* name, int fd) {
  if (!*real) *real = (int (*)(int))dlsym(RTLD_NEXT, name);
  int r = (*real)(fd);
  delay();
  return r;
}

int fdatasync(int fd) {
  static int (*real)(int);
  return synced_then_delay(&real, "fdatasync", fd);
}

int fsync(int fd) {
  static int (*real)(int);
  return synced_then_delay(&real, "fsync", fd);
}
