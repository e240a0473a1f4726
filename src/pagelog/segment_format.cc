#include "pagelog/segment_format.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

#include "base/crc32c.h"

namespace quire {

Bytes encode_segment_header(uint64_t segment_number) {
  Bytes h(kSegmentHeaderBytes, 0);
  encode_fixed32(h.data(), kSegmentMagic);
  h[4] = kSegmentFormatVersion;
  encode_fixed64(h.data() + 8, segment_number);
  encode_fixed32(h.data() + 28, crc32c::mask(crc32c::value(h.data(), 28)));
  return h;
}

Status check_segment_header(ByteView in, uint64_t segment_number) {
  if (in.size() < kSegmentHeaderBytes) {
    return Status(Code::kCorruption, "segment shorter than its header")
        .with("segment", segment_number);
  }
  if (decode_fixed32(in.data()) != kSegmentMagic) {
    return Status(Code::kCorruption, "bad segment magic").with("segment", segment_number);
  }
  if (crc32c::unmask(decode_fixed32(in.data() + 28)) != crc32c::value(in.data(), 28)) {
    return Status(Code::kCorruption, "segment header checksum mismatch")
        .with("segment", segment_number);
  }
  if (in[4] != kSegmentFormatVersion) {
    return Status(in[4] > kSegmentFormatVersion ? Code::kVersionTooNew : Code::kCorruption,
                  fmt::format("segment format version {} (this build reads {})", in[4],
                              kSegmentFormatVersion))
        .with("segment", segment_number);
  }
  uint64_t n = decode_fixed64(in.data() + 8);
  if (n != segment_number) {
    return Status(Code::kCorruption, "segment number does not match its file name")
        .with("segment", segment_number)
        .with("header_segment", n);
  }
  return Status();
}

std::string segment_file_name(uint64_t segment_number) {
  return fmt::format("seg-{:016}", segment_number);
}

Result<uint64_t> parse_segment_file_name(const std::string& name) {
  if (name.size() != 20 || name.compare(0, 4, "seg-") != 0)
    return not_found("not a segment file name");
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(name.data() + 4, name.data() + name.size(), n);
  if (ec != std::errc() || p != name.data() + name.size())
    return not_found("not a segment file name");
  // Numbers start at 1 (SegmentStore's active_ 0 is "none"): "seg-0..." was never written.
  if (n == 0) return not_found("not a segment file name: segment numbers start at 1");
  return n;
}

SegmentScan scan_segment(ByteView file, uint64_t segment_number) {
  SegmentScan scan;
  scan.header_status = check_segment_header(file, segment_number);
  if (!scan.header_status.is_ok()) return scan;
  uint64_t pos = kSegmentHeaderBytes;
  scan.valid_end = pos;
  uint8_t magic[4];
  encode_fixed32(magic, kRecordMagic);
  while (pos < file.size()) {
    RecordHeader h{};
    size_t size = 0;
    if (check_record(file.subspan(pos), &h, &size, nullptr) == DecodeOutcome::kOk) {
      QUIRE_ASSERT(size >= kRecordHeaderBytes && pos + size <= file.size());
      scan.records.push_back({pos, static_cast<uint32_t>(size), h});
      pos += size;
      scan.valid_end = pos;
      continue;
    }
    // Corrupt or cut short: find the next offset where a whole valid record starts.
    uint64_t next = pos + 1;
    bool found = false;
    while (next + 4 <= file.size()) {
      const void* hit = std::memchr(file.data() + next, magic[0], file.size() - next);
      if (hit == nullptr) break;
      next = static_cast<const uint8_t*>(hit) - file.data();
      if (next + 4 <= file.size() && std::memcmp(file.data() + next, magic, 4) == 0 &&
          check_record(file.subspan(next), nullptr, nullptr, nullptr) == DecodeOutcome::kOk) {
        found = true;
        break;
      }
      next++;
    }
    if (!found) {
      scan.has_tail = true;  // nothing valid follows: the rest is a tail
      scan.zero_tail = std::all_of(file.begin() + static_cast<ptrdiff_t>(pos), file.end(),
                                   [](uint8_t b) { return b == 0; });
      break;
    }
    QUIRE_ASSERT(next > pos);  // every damaged range is skipped, never read again
    scan.damaged.push_back({pos, next});
    pos = next;
  }
  QUIRE_ASSERT(scan.valid_end <= file.size());
  return scan;
}

bool cut_at_lost_sector(ByteView file, SegmentScan& scan) {
  constexpr uint64_t kSector = 512;
  for (const ByteRange& r : scan.damaged) {
    for (uint64_t s = (r.begin + kSector - 1) / kSector * kSector; s + kSector <= r.end;
         s += kSector) {
      const uint8_t* p = file.data() + s;
      if (!std::all_of(p, p + kSector, [](uint8_t b) { return b == 0; })) continue;
      const uint64_t cut = r.begin;
      std::erase_if(scan.records, [&](const ScannedRecord& rec) { return rec.offset >= cut; });
      std::erase_if(scan.damaged, [&](const ByteRange& d) { return d.begin >= cut; });
      scan.valid_end = cut;
      scan.has_tail = true;
      scan.zero_tail = false;
      return true;
    }
  }
  return false;
}

uint64_t torn_bytes(ByteView file, const SegmentScan& scan) {
  uint64_t end = file.size();
  while (end > scan.valid_end && file[end - 1] == 0) end--;
  return end - scan.valid_end;
}

bool copy_gaps_valid(const std::vector<CopyGap>& gaps) {
  if (gaps.size() > kCopyGapsMax) return false;
  for (size_t i = 0; i < gaps.size(); ++i) {
    if (gaps[i].from >= gaps[i].to) return false;
    if (i > 0 && gaps[i].from <= gaps[i - 1].to) return false;
  }
  return true;
}

Bytes encode_copy_gaps_file(const std::vector<CopyGap>& gaps) {
  Bytes b(4 + 16 * gaps.size() + 4);
  encode_fixed32(b.data(), static_cast<uint32_t>(gaps.size()));
  for (size_t i = 0; i < gaps.size(); ++i) {
    encode_fixed64(b.data() + 4 + 16 * i, gaps[i].from.value);
    encode_fixed64(b.data() + 12 + 16 * i, gaps[i].to.value);
  }
  const size_t body = b.size() - 4;
  encode_fixed32(b.data() + body, crc32c::mask(crc32c::value(b.data(), body)));
  return b;
}

Result<std::vector<CopyGap>> decode_copy_gaps_file(ByteView in) {
  if (in.size() < 8) return Status(Code::kCorruption, "copy-gaps file too short");
  const uint32_t n = decode_fixed32(in.data());
  if (n > kCopyGapsMax || in.size() != 4 + 16 * size_t{n} + 4) {
    return Status(Code::kCorruption, "copy-gaps file has the wrong size").with("gaps", n);
  }
  const size_t body = in.size() - 4;
  if (crc32c::unmask(decode_fixed32(in.data() + body)) != crc32c::value(in.data(), body)) {
    return Status(Code::kCorruption, "copy-gaps file does not check");
  }
  std::vector<CopyGap> gaps(n);
  for (size_t i = 0; i < n; ++i) {
    gaps[i].from = Lsn(decode_fixed64(in.data() + 4 + 16 * i));
    gaps[i].to = Lsn(decode_fixed64(in.data() + 12 + 16 * i));
  }
  if (!copy_gaps_valid(gaps)) return Status(Code::kCorruption, "copy-gaps file's gaps overlap");
  return gaps;
}

}  // namespace quire
