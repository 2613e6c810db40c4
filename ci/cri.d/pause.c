/* ci/cri-test's pause image: the sandbox's init, as Kubernetes' pause. It reaps every
 * child that reparents to it (a shared-pid pod's orphans) and exits 0 on SIGINT or
 * SIGTERM. Built static by ci/cri-test (gcc -static), the image's only file. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) { (void)sig; _exit(0); }

static void reap(int sig) {
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(void) {
    struct sigaction q = {.sa_handler = quit};
    struct sigaction r = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP | SA_RESTART};
    sigaction(SIGINT, &q, NULL);
    sigaction(SIGTERM, &q, NULL);
    sigaction(SIGCHLD, &r, NULL);
    for (;;) {
        pause();
    }
}
