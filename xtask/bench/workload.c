/* Workloads for `cargo xtask bench`. Each runs for a fixed time (or a fixed count) and prints
 * what it did as "key=value" lines, so the bench measures throughput, not elapsed time.
 *
 *   workload fork|exec|thread|pipeline MS [WORKERS]   loop for MS ms in WORKERS processes;
 *                                                     print ops, ns, and the CPU they took
 *   workload signals N [FILE]                         send N SIGUSR1 to itself, to a handler;
 *                                                     report to FILE (default: stdout)
 *   workload orphans N                                N times: leave an orphan to our init,
 *                                                     let it exit, time until it is reaped
 *   workload forward N                                N times: signal our init (our parent),
 *                                                     time until our handler runs
 * The last two print one "lat=NS" line per measurement (or "lost=1" when 1 s passed).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sched.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* CPU time (user + system) of this process and every child it has waited for, in ns: what the
 * work cost, probes included (they run in the context of the task that forks, execs, exits). */
static long long cpu_ns(void) {
    long long total = 0;
    int who[2] = {RUSAGE_SELF, RUSAGE_CHILDREN};
    for (int i = 0; i < 2; i++) {
        struct rusage ru;
        getrusage(who[i], &ru);
        total += (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
                 (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
    }
    return total;
}

static void *thread_main(void *arg) { return arg; }

/* One unit of work; returns 0 on success. */
static int once(const char *mode) {
    if (!strcmp(mode, "fork")) {
        pid_t child = fork();
        if (child < 0) return -1;
        if (child == 0) _exit(0);
        return waitpid(child, NULL, 0) == child ? 0 : -1;
    }
    if (!strcmp(mode, "exec")) {
        pid_t child = fork();
        if (child < 0) return -1;
        if (child == 0) {
            execl("/bin/true", "true", (char *)NULL);
            _exit(127);
        }
        int status;
        return waitpid(child, &status, 0) == child && status == 0 ? 0 : -1;
    }
    if (!strcmp(mode, "thread")) {
        pthread_t t;
        if (pthread_create(&t, NULL, thread_main, NULL) != 0) return -1;
        return pthread_join(t, NULL);
    }
    if (!strcmp(mode, "pipeline")) {
        pid_t child = fork();
        if (child < 0) return -1;
        if (child == 0) {
            execl("/bin/sh", "sh", "-c", "echo storm | cat | cat >/dev/null", (char *)NULL);
            _exit(127);
        }
        int status;
        return waitpid(child, &status, 0) == child && status == 0 ? 0 : -1;
    }
    fprintf(stderr, "workload: unknown mode %s\n", mode);
    exit(2);
}

/* Runs MODE until the deadline; returns how many units completed. */
static long long loop(const char *mode, long long deadline) {
    long long ops = 0;
    while (now_ns() < deadline) {
        if (once(mode) != 0) {
            perror("workload");
            exit(1);
        }
        ops++;
    }
    return ops;
}

static volatile sig_atomic_t handled;
static void on_signal(int sig) { (void)sig; handled++; }

static int signals(long long n, const char *report) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    pid_t self = getpid();
    long long start = now_ns(), sent = 0;
    /* A process-directed signal to oneself is delivered before kill() returns: no two are ever
     * pending at once, so none merge and every one reaches the handler. */
    for (long long i = 0; i < n; i++) {
        if (kill(self, SIGUSR1) == 0) sent++;
    }
    long long end = now_ns();
    FILE *out = report ? fopen(report, "w") : stdout;
    if (!out) {
        perror(report);
        return 1;
    }
    fprintf(out, "pid=%d\nsent=%lld\nhandled=%lld\nns=%lld\nend_ns=%lld\n", self, sent,
            (long long)handled, end - start, end);
    fclose(out);
    return handled == sent ? 0 : 1;
}

/* Reap latency of our init: a child forks a grandchild and exits at once, so the grandchild
 * is an orphan that the kernel hands to init (PID 1 of our pid namespace). When told, the
 * orphan writes its clock and exits; we poll kill(pid, 0), which succeeds on a zombie and
 * fails with ESRCH once init has reaped it. The latency includes the kernel's exit path. */
static int orphans(long long n) {
    long long *shared = mmap(NULL, 2 * sizeof(long long), PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) return 1;
    for (long long i = 0; i < n; i++) {
        int go[2];
        if (pipe(go) != 0) return 1;
        shared[0] = 0;
        shared[1] = 0;
        pid_t a = fork();
        if (a < 0) return 1;
        if (a == 0) {
            pid_t b = fork();
            if (b == 0) {
                char c;
                close(go[1]);
                /* EOF when the measurer closes its end: exit now. */
                while (read(go[0], &c, 1) > 0) {
                }
                shared[0] = now_ns();
                _exit(0);
            }
            shared[1] = b;
            _exit(b > 0 ? 0 : 1);
        }
        close(go[0]);
        int status;
        waitpid(a, &status, 0);
        pid_t b = (pid_t)shared[1];
        if (b <= 0) return 1;
        close(go[1]);
        long long deadline = now_ns() + 1000000000LL;
        while (kill(b, 0) == 0 && now_ns() < deadline) sched_yield();
        long long gone = now_ns();
        if (kill(b, 0) == 0 || shared[0] == 0)
            printf("lost=1\n");
        else
            printf("lat=%lld\n", gone - shared[0]);
    }
    return 0;
}

static volatile long long handled_at;

static void on_usr1(int sig) {
    (void)sig;
    handled_at = now_ns();
}

/* Signal-forward latency: SIGUSR1 to our init (our parent), which forwards it to us; the time
 * from just before kill() to our handler running. */
static int forward(long long n) {
    struct sigaction sa = {.sa_handler = on_usr1};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    pid_t init = getppid();
    for (long long i = 0; i < n; i++) {
        handled_at = 0;
        long long sent = now_ns();
        if (kill(init, SIGUSR1) != 0) return 1;
        long long deadline = sent + 1000000000LL;
        while (handled_at == 0 && now_ns() < deadline) sched_yield();
        if (handled_at == 0)
            printf("lost=1\n");
        else
            printf("lat=%lld\n", handled_at - sent);
        /* Apart, so that no two are pending at once and merge. */
        usleep(1000);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: workload fork|exec|thread|pipeline MS [WORKERS] | signals|orphans|forward N [FILE]\n");
        return 2;
    }
    const char *mode = argv[1];
    if (!strcmp(mode, "signals")) return signals(atoll(argv[2]), argc > 3 ? argv[3] : NULL);
    if (!strcmp(mode, "orphans")) return orphans(atoll(argv[2]));
    if (!strcmp(mode, "forward")) return forward(atoll(argv[2]));
    long long ms = atoll(argv[2]);
    int workers = argc > 3 ? atoi(argv[3]) : 1;
    long long start = now_ns(), deadline = start + ms * 1000000LL, ops = 0;
    if (workers <= 1) {
        ops = loop(mode, deadline);
    } else {
        /* Each worker reports its count through the pipe. */
        int fds[2];
        if (pipe(fds) != 0) return 1;
        for (int w = 0; w < workers; w++) {
            if (fork() == 0) {
                long long mine = loop(mode, deadline);
                if (write(fds[1], &mine, sizeof mine) != sizeof mine) _exit(1);
                _exit(0);
            }
        }
        close(fds[1]);
        long long mine;
        while (read(fds[0], &mine, sizeof mine) == sizeof mine) ops += mine;
        while (wait(NULL) > 0) {}
    }
    long long ns = now_ns() - start;
    printf("ops=%lld\nns=%lld\ncpu_ns=%lld\n", ops, ns, cpu_ns());
    return 0;
}
