// The migration benchmark's case (b) (bench/migration/README.md) and the migration fault
// scenario (vm-migrate-faults.sh): a process that keeps a working
// set of anonymous memory and rewrites a few MiB of it every second, as a database or cache does.
// Anonymous memory (not a tmpfs file) because that is what CRIU's pre-dumps track page by page; a
// tmpfs file is dumped whole at the final dump only.
//
//   dirtier MIB RATE   (RATE MiB rewritten per second, the next RATE MiB of the set each second,
//                       round and round; /ready once the set is written, /passes counts the
//                       seconds of rewriting since)
// Contiguous blocks, not random pages: with transparent huge pages one byte written marks a whole
// 2 MiB page dirty, so RATE MiB of random 4 KiB writes would dirty the whole set every second and
// the rate would not be the one asked for.
// Built static on the host by their run scripts (the containers' template is busybox).
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static uint64_t next(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

static void note(const char *path, unsigned long n) {
  FILE *f = fopen(path, "w");
  if (f) {
    fprintf(f, "%lu\n", n);
    fclose(f);
  }
}

static void leave(int sig) {
  (void)sig;
  _exit(0);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: dirtier MIB RATE_MIB_PER_S\n");
    return 2;
  }
  size_t len = (size_t)strtoul(argv[1], NULL, 10) << 20;
  size_t block = (size_t)strtoul(argv[2], NULL, 10) << 20;
  signal(SIGTERM, leave);
  signal(SIGUSR2, leave);
  unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  // Random bytes, not zeros: CRIU skips never-touched pages, and zero pages compress to nothing.
  uint64_t x = (uint64_t)getpid() * 2654435761u | 1;
  for (size_t i = 0; i + 8 <= len; i += 8) {
    uint64_t v = next(&x);
    __builtin_memcpy(p + i, &v, 8);
  }
  note("/ready", 1);
  if (block > len)
    block = len;
  size_t at = 0;
  for (unsigned long pass = 1;; ++pass) {
    for (size_t i = 0; i < block; i += 4096) { // one byte per 4 KiB page dirties it
      p[(at + i) % len] = (unsigned char)next(&x);
    }
    at = (at + block) % len;
    note("/passes", pass);
    sleep(1);
  }
}
