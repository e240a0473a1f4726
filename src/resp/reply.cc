#include <fmt/format.h>

#include "resp/handler.h"

namespace quire::resp {

void ReplyWriter::line(char type, std::string_view s) {
  out_.push_back(type);
  const size_t at = out_.size();
  out_.append(s);
  for (size_t i = at; i < out_.size(); ++i) {
    if (out_[i] == '\r' || out_[i] == '\n') out_[i] = ' ';
  }
  out_.append("\r\n");
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
  fmt::format_to(std::back_inserter(out_), ":{}\r\n", v);
}

void ReplyWriter::bulk(std::string_view s) {
  fmt::format_to(std::back_inserter(out_), "${}\r\n", s.size());
  out_.append(s);
  out_.append("\r\n");
}

void ReplyWriter::null_bulk() {
  out_.append("$-1\r\n");
}
void ReplyWriter::array(size_t n) {
  fmt::format_to(std::back_inserter(out_), "*{}\r\n", n);
}
void ReplyWriter::null_array() {
  out_.append("*-1\r\n");
}

}  // namespace quire::resp
