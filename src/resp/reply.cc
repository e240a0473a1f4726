#include <fmt/format.h>

#include "resp/handler.h"

namespace quire::resp {

void ReplyWriter::line(char type, std::string_view s) {
  if (full()) return;
  out_.push_back(type);
  const size_t at = out_.size();
  out_.append(s);
  for (size_t i = at; i < out_.size(); ++i) {
    if (out_[i] == '\r' || out_[i] == '\n') out_[i] = ' ';
  }
  out_.append("\r\n");
  full();
}

void ReplyWriter::simple(std::string_view s) {
  line('+', s);
}
void ReplyWriter::error(std::string_view s) {
  line('-', s);
}
void ReplyWriter::err(std::string_view message) {
  line('-', fmt::format("ERR {}", message));
}

void ReplyWriter::integer(int64_t v) {
  if (full()) return;
  fmt::format_to(std::back_inserter(out_), ":{}\r\n", v);
}

void ReplyWriter::bulk(std::string_view s) {
  if (full()) return;
  if (s.size() > bytes_max_) {
    overflow(out_.size());
    return;
  }
  fmt::format_to(std::back_inserter(out_), "${}\r\n", s.size());
  out_.append(s);
  out_.append("\r\n");
  full();
}

void ReplyWriter::null_bulk() {
  if (full()) return;
  out_.append("$-1\r\n");
}
void ReplyWriter::array(size_t n) {
  if (full()) return;
  fmt::format_to(std::back_inserter(out_), "*{}\r\n", n);
}
void ReplyWriter::null_array() {
  if (full()) return;
  out_.append("*-1\r\n");
}

void ReplyWriter::append(const ReplyWriter& other) {
  if (full()) return;
  if (other.overflowed_ || other.out_.size() > bytes_max_) {
    overflow(out_.size());
    return;
  }
  out_ += other.out_;
  full();
}

}  // namespace quire::resp
