/* maxrss CMD ARG...: run CMD, wait for it, print "<exit status> <ru_maxrss KiB> <cpu µs>" on
 * stderr, cpu = ru_utime + ru_stime of CMD and every descendant it (or they) waited for.
 *
 * ru_maxrss from wait4() is the largest RSS of any single process in CMD's tree (CMD and
 * every descendant reaped inside the tree), including the RSS each process had just before
 * it called execve(). So the launcher itself counts: its forked child carries the
 * launcher's RSS into CMD's execve. GNU time adds ~550 KiB that way; this launcher is built
 * without libc (-nostdlib -static), so its child carries a few KiB only.
 * x86_64 and aarch64 (raw syscalls). Built by ci/bench with `cc -nostdlib -static -Os`. */
typedef unsigned long u64;
typedef long i64;

#if defined(__x86_64__)
#define SYS_write 1
#define SYS_execve 59
#define SYS_exit 60
#define SYS_wait4 61
#define SYS_clone 56
static i64 sc(i64 n, i64 a, i64 b, i64 c, i64 d, i64 e) {
    i64 r;
    register i64 r10 __asm__("r10") = d;
    register i64 r8 __asm__("r8") = e;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
                     : "rcx", "r11", "memory");
    return r;
}
#elif defined(__aarch64__)
#define SYS_write 64
#define SYS_execve 221
#define SYS_exit 93
#define SYS_wait4 260
#define SYS_clone 220
static i64 sc(i64 n, i64 a, i64 b, i64 c, i64 d, i64 e) {
    register i64 x8 __asm__("x8") = n;
    register i64 x0 __asm__("x0") = a;
    register i64 x1 __asm__("x1") = b;
    register i64 x2 __asm__("x2") = c;
    register i64 x3 __asm__("x3") = d;
    register i64 x4 __asm__("x4") = e;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4) : "memory");
    return x0;
}
#else
#error "x86_64 or aarch64 only"
#endif

struct rusage_k { i64 f[18]; }; /* ru_utime(2) ru_stime(2) ru_maxrss ... */

static void put_num(char *buf, int *len, u64 v) {
    char t[24];
    int n = 0;
    do { t[n++] = (char)('0' + v % 10); v /= 10; } while (v && n < 24);
    while (n) buf[(*len)++] = t[--n];
}

__attribute__((used)) static void start_c(i64 *sp) {
    i64 argc = sp[0];
    char **argv = (char **)(sp + 1);
    char **envp = argv + argc + 1;
    if (argc < 2) sc(SYS_exit, 2, 0, 0, 0, 0);
    i64 pid = sc(SYS_clone, 17 /* SIGCHLD */, 0, 0, 0, 0);
    if (pid == 0) {
        sc(SYS_execve, (i64)argv[1], (i64)(argv + 1), (i64)envp, 0, 0);
        sc(SYS_exit, 127, 0, 0, 0, 0);
    }
    if (pid < 0) sc(SYS_exit, 2, 0, 0, 0, 0);
    int status = 0;
    struct rusage_k ru;
    for (int i = 0; i < 18; i++) ru.f[i] = 0;
    if (sc(SYS_wait4, pid, (i64)&status, 0, (i64)&ru, 0) != pid) sc(SYS_exit, 2, 0, 0, 0, 0);
    int code = (status & 0x7f) ? 128 + (status & 0x7f) : (status >> 8) & 0xff;
    char buf[64];
    int len = 0;
    put_num(buf, &len, (u64)code);
    buf[len++] = ' ';
    put_num(buf, &len, (u64)ru.f[4]);
    buf[len++] = ' ';
    /* ru_utime = f[0] s + f[1] µs, ru_stime = f[2] s + f[3] µs */
    put_num(buf, &len, (u64)(ru.f[0] * 1000000 + ru.f[1] + ru.f[2] * 1000000 + ru.f[3]));
    buf[len++] = '\n';
    sc(SYS_write, 2, (i64)buf, len, 0, 0);
    sc(SYS_exit, code, 0, 0, 0, 0);
}

#if defined(__x86_64__)
__asm__(".globl _start\n_start:\n mov %rsp, %rdi\n and $-16, %rsp\n call start_c\n hlt\n");
#else
__asm__(".globl _start\n_start:\n mov x0, sp\n bl start_c\n");
#endif
