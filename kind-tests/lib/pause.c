/* The pod sandbox's infra process, built locally (no registry to pull registry.k8s.io/pause
 * from). As upstream's: exit 0 on SIGINT/SIGTERM, reap children, otherwise sleep. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig) { (void)sig; _exit(0); }
static void on_child(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) {} }

int main(void) {
  struct sigaction action = {0};
  action.sa_handler = on_term;
  sigaction(SIGINT, &action, 0);
  sigaction(SIGTERM, &action, 0);
  action.sa_handler = on_child;
  action.sa_flags = SA_NOCLDSTOP;
  sigaction(SIGCHLD, &action, 0);
  for (;;) pause();
}
