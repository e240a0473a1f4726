#include "pagelog/page_service_link.h"

#include <utility>

namespace quire {

PageServiceLink::PageServiceLink(Env& env, std::vector<Address> servers, Term term, Lsn chain_head,
                                 Lsn next_lsn) {
  ReplicationOptions options;
  options.servers = std::move(servers);
  options.write_quorum = kServiceWriteQuorum;
  options.term = term;
  client_ = std::make_unique<ReplicationClient>(env, std::move(options));
  writer_ = std::make_unique<RecordWriter>(*client_, chain_head, next_lsn);
}

PageServiceLink::~PageServiceLink() {
  writer_.reset();
  client_.reset();
}

}  // namespace quire
