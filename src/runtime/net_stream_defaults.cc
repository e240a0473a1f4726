// The defaults of Net's byte-stream calls, for a Net without streams (a test double). Kept
// out of env.cc, which the fuzz targets compile: clang with -g and the sanitizers cannot
// emit this coroutine ("Cannot represent a difference across sections").
#include "runtime/env.h"

namespace quire {

Result<std::unique_ptr<StreamListener>> Net::listen_stream(const Address& address) {
  return unavailable("listen_stream " + address + ": this Net has no byte streams");
}

namespace {
Task<Result<std::unique_ptr<StreamConnection>>> refuse_stream(std::string why) {
  co_return unavailable(std::move(why));
}
}  // namespace

Task<Result<std::unique_ptr<StreamConnection>>> Net::connect_stream(const Address& address,
                                                                    Deadline) {
  // The message is made here: the caller's address may be gone when the task runs.
  return refuse_stream("connect_stream " + address + ": this Net has no byte streams");
}

}  // namespace quire
