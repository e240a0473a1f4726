// PageServiceLink: a compute node's link to one page service, as the in-process clusters
// wire it: a ReplicationClient over the service's servers with W = kServiceWriteQuorum, and
// the RecordWriter that continues the service's record chain. Both in-process cluster
// builders use it: the simulated one of the engine tests (tests/support/engine_cluster.h)
// and the real-loop one of `quire bench engine` (bench/engine_bench.cc).
#pragma once

#include <memory>
#include <vector>

#include "pagelog/record_writer.h"
#include "pagelog/replication_client.h"

namespace quire {

// Each write is acknowledged by two of the service's (usually three) page servers.
inline constexpr size_t kServiceWriteQuorum = 2;

class PageServiceLink {
 public:
  // The client writes as `term`; the writer's chain continues after `chain_head`, its next
  // record at `next_lsn` (see RecordWriter). `env` must outlive this.
  PageServiceLink(Env& env, std::vector<Address> servers, Term term, Lsn chain_head, Lsn next_lsn);
  // The writer first: it references the client.
  ~PageServiceLink();
  PageServiceLink(const PageServiceLink&) = delete;
  PageServiceLink& operator=(const PageServiceLink&) = delete;

  ReplicationClient& client() { return *client_; }
  RecordWriter& writer() { return *writer_; }

 private:
  std::unique_ptr<ReplicationClient> client_;
  std::unique_ptr<RecordWriter> writer_;
};

}  // namespace quire
