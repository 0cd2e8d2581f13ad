#include "rpc/cli/background_teardown.h"

#include <fcntl.h>
#include <unistd.h>

namespace thaw::cli {

void hand_teardown_to_background() {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return;
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    return;
  }
  if (pid == 0) {
    // The reaper must not hold the caller's stdout/stderr open: a caller
    // reading them to EOF would otherwise wait for the teardown.
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, STDIN_FILENO);
    ::dup2(null, STDOUT_FILENO);
    ::dup2(null, STDERR_FILENO);
    ::close(pipe_fds[1]);
    ::setsid();
    // EOF arrives when the parent has exited and its fds are gone; then this
    // child's exit drops the last VM references.
    char byte;
    while (::read(pipe_fds[0], &byte, 1) > 0) {
    }
    ::_exit(0);
  }
  ::close(pipe_fds[0]);  // the write end stays open until this process exits
}

}  // namespace thaw::cli
