/*
 * The pod sandbox's "pause" process, built here (no registry can be reached to pull one).
 * It holds the pod's namespaces open, does nothing else, reaps any orphan that lands on it
 * (it is PID 1 of the pod when the pod shares its process namespace) and exits 0 on SIGINT
 * or SIGTERM, which is all containerd's CRI asks of a sandbox image.
 *
 *   gcc -static -O2 -o pause pause.c    (k8s-tests/cluster-real/build.sh)
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) {
  (void)sig;
  _exit(0);
}

static void reap(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction on_stop = {.sa_handler = stop};
  struct sigaction on_child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
  if (getpid() != 1) {
    /* Harmless, but worth a word: outside a pod nothing would ever send it a signal. */
    static const char note[] = "pause: not PID 1 of a pod sandbox\n";
    (void)!write(2, note, sizeof note - 1);
  }
  if (sigaction(SIGINT, &on_stop, NULL) < 0 || sigaction(SIGTERM, &on_stop, NULL) < 0 ||
      sigaction(SIGCHLD, &on_child, NULL) < 0) {
    return 1;
  }
  for (;;) pause();
}
