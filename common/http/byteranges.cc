#include "common/http/byteranges.h"

#include <algorithm>

#include "common/http/http_text.h"

namespace sync_agent {

std::string FormatRangeHeader(const std::vector<ByteRange>& ranges) {
  std::string out = "bytes=";
  for (size_t i = 0; i < ranges.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(ranges[i].offset);
    out += '-';
    out += std::to_string(ranges[i].end() - 1);
  }
  return out;
}

RangeOutcome ParseRangeHeader(std::string_view header, uint64_t size,
                              std::vector<ByteRange>* ranges) {
  ranges->clear();
  header = TrimWhitespace(header);
  size_t eq = header.find('=');
  if (eq == std::string_view::npos) return RangeOutcome::kIgnore;
  if (AsciiLower(TrimWhitespace(header.substr(0, eq))) != "bytes") return RangeOutcome::kIgnore;
  std::string_view specs = header.substr(eq + 1);
  std::vector<ByteRange> found;
  size_t count = 0;
  while (true) {
    size_t comma = specs.find(',');
    std::string_view spec = TrimWhitespace(specs.substr(0, comma));
    if (!spec.empty()) {
      if (++count > kMaxRangesPerRequest) return RangeOutcome::kIgnore;
      size_t dash = spec.find('-');
      if (dash == std::string_view::npos) return RangeOutcome::kIgnore;
      std::string_view a = TrimWhitespace(spec.substr(0, dash));
      std::string_view b = TrimWhitespace(spec.substr(dash + 1));
      if (a.empty()) {  // suffix: the last N bytes
        uint64_t n = 0;
        if (!ParseDecimal(b, &n)) return RangeOutcome::kIgnore;
        if (n > 0 && size > 0) found.push_back({size - std::min(n, size), std::min(n, size)});
      } else {
        uint64_t first = 0, last = UINT64_MAX;
        if (!ParseDecimal(a, &first)) return RangeOutcome::kIgnore;
        if (!b.empty() && !ParseDecimal(b, &last)) return RangeOutcome::kIgnore;
        if (last < first) return RangeOutcome::kIgnore;
        if (first < size) found.push_back({first, std::min(last, size - 1) - first + 1});
      }
    }
    if (comma == std::string_view::npos) break;
    specs.remove_prefix(comma + 1);
  }
  if (count == 0) return RangeOutcome::kIgnore;
  if (found.empty()) return RangeOutcome::kUnsatisfiable;
  std::sort(found.begin(), found.end(),
            [](const ByteRange& x, const ByteRange& y) { return x.offset < y.offset; });
  for (const ByteRange& r : found) {
    if (!ranges->empty() && r.offset <= ranges->back().end()) {
      ByteRange& last = ranges->back();
      last.length = std::max(last.end(), r.end()) - last.offset;
    } else {
      ranges->push_back(r);
    }
  }
  return RangeOutcome::kSatisfiable;
}

std::string ContentRange::ToString() const {
  std::string out = "bytes ";
  out += first && last ? std::to_string(*first) + "-" + std::to_string(*last) : "*";
  out += "/";
  out += total ? std::to_string(*total) : "*";
  return out;
}

std::optional<ContentRange> ParseContentRange(std::string_view value) {
  value = TrimWhitespace(value);
  size_t space = value.find_first_of(" \t");
  if (space == std::string_view::npos || AsciiLower(value.substr(0, space)) != "bytes") {
    return std::nullopt;
  }
  value = value.substr(space + 1);
  size_t slash = value.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string_view span = TrimWhitespace(value.substr(0, slash));
  std::string_view total = TrimWhitespace(value.substr(slash + 1));
  ContentRange out;
  uint64_t n = 0;
  if (total != "*") {
    if (!ParseDecimal(total, &n)) return std::nullopt;
    out.total = n;
  }
  if (span == "*") {
    if (!out.total) return std::nullopt;  // "bytes */*" says nothing
    return out;
  }
  size_t dash = span.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  uint64_t first = 0, last = 0;
  if (!ParseDecimal(TrimWhitespace(span.substr(0, dash)), &first) ||
      !ParseDecimal(TrimWhitespace(span.substr(dash + 1)), &last) || last < first) {
    return std::nullopt;
  }
  // RFC 9110 14.4: the complete length must exceed the last position.
  if (out.total && last >= *out.total) return std::nullopt;
  out.first = first;
  out.last = last;
  return out;
}

const std::string* MediaType::Parameter(std::string_view name) const {
  for (const auto& [n, v] : parameters) {
    if (n == name) return &v;
  }
  return nullptr;
}

std::optional<MediaType> ParseMediaType(std::string_view value) {
  size_t semi = value.find(';');
  MediaType out;
  out.type = AsciiLower(TrimWhitespace(value.substr(0, semi)));
  size_t slash = out.type.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == out.type.size()) {
    return std::nullopt;
  }
  size_t pos = semi;
  while (pos != std::string_view::npos && pos < value.size()) {
    ++pos;  // past ';'
    size_t eq = value.find_first_of("=;", pos);
    if (eq == std::string_view::npos || value[eq] == ';') {  // a parameter without '='
      pos = eq;
      continue;
    }
    std::string name = AsciiLower(TrimWhitespace(value.substr(pos, eq - pos)));
    pos = eq + 1;
    while (pos < value.size() && (value[pos] == ' ' || value[pos] == '\t')) ++pos;
    std::string param;
    if (pos < value.size() && value[pos] == '"') {
      bool closed = false;
      for (++pos; pos < value.size(); ++pos) {
        char c = value[pos];
        if (c == '\\' && pos + 1 < value.size()) {
          param += value[++pos];
        } else if (c == '"') {
          closed = true;
          ++pos;
          break;
        } else {
          param += c;
        }
      }
      if (!closed) return std::nullopt;
      pos = value.find(';', pos);
    } else {
      size_t end = value.find(';', pos);
      param = std::string(TrimWhitespace(value.substr(pos, end - pos)));
      pos = end;
    }
    if (!name.empty()) out.parameters.emplace_back(std::move(name), std::move(param));
  }
  return out;
}

ByteRangesParser::ByteRangesParser(std::string context, std::string_view boundary,
                                   PartStart on_part, PartData on_data)
    : context_(std::move(context)),
      dash_boundary_("--" + std::string(boundary)),
      on_part_(std::move(on_part)),
      on_data_(std::move(on_data)) {}

Status ByteRangesParser::Malformed(std::string_view why) const {
  return Status::Unsupported(context_, "malformed multipart/byteranges body: " + std::string(why));
}

std::string ByteRangesParser::PartName() const {
  return "part " + std::to_string(parts_) + " (" + range_.ToString() + ")";
}

Status ByteRangesParser::Feed(const char* data, size_t n) {
  size_t i = 0;
  while (i < n) {
    const char c = data[i];
    switch (state_) {
      case State::kPreamble:
        // A delimiter is "--<boundary>" at the start of a line; the body's
        // first line counts as one.
        if (line_start_ && c == dash_boundary_[matched_]) {
          if (++matched_ == dash_boundary_.size()) {
            matched_ = 0;
            state_ = State::kAfterBoundary;
          }
        } else {
          matched_ = 0;
          line_start_ = c == '\n';
        }
        if (++preamble_bytes_ > kMaxPreambleBytes) {
          return Malformed("no delimiter line '" + dash_boundary_ + "' in its first " +
                           std::to_string(kMaxPreambleBytes) + " bytes");
        }
        ++i;
        break;

      case State::kAfterBoundary:
        if (c == '-') {
          state_ = State::kCloseDash;
        } else if (c == '\r') {
          state_ = State::kBoundaryLF;
        } else if (c == '\n') {
          StartPart();
        } else if (c != ' ' && c != '\t') {
          // In the preamble, a line that merely starts with the delimiter is text.
          if (!in_preamble_) return Malformed("garbage after the delimiter after " + PartName());
          state_ = State::kPreamble;
          line_start_ = false;
        }
        ++i;
        break;

      case State::kCloseDash:
        if (c != '-') {
          if (!in_preamble_) return Malformed("garbage after the delimiter after " + PartName());
          state_ = State::kPreamble;
          line_start_ = c == '\n';
          ++i;
          break;
        }
        if (in_preamble_) return Malformed("the closing delimiter comes before any part");
        state_ = State::kEpilogue;
        ++i;
        break;

      case State::kBoundaryLF:
        if (c != '\n') return Malformed("CR without LF after a delimiter");
        StartPart();
        ++i;
        break;

      case State::kHeaders:
        if (++header_bytes_ > kMaxHeaderBytes) {
          return Malformed("part " + std::to_string(parts_) + " has more than " +
                           std::to_string(kMaxHeaderBytes) + " bytes of headers");
        }
        ++i;
        if (c == '\n') {
          SA_RETURN_IF_ERROR(EndHeaderLine());
        } else {
          if (line_.size() >= kMaxHeaderLineBytes) {
            return Malformed("part " + std::to_string(parts_) + " has a header line longer than " +
                             std::to_string(kMaxHeaderLineBytes) + " bytes");
          }
          line_ += c;
        }
        break;

      case State::kData: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, n - i));
        SA_RETURN_IF_ERROR(on_data_(offset_, data + i, take));
        offset_ += take;
        remaining_ -= take;
        i += take;
        if (remaining_ == 0) state_ = State::kDataEndCR;
        break;
      }

      case State::kDataEndCR:
      case State::kDataEndLF:
        if (c == '\r' && state_ == State::kDataEndCR) {
          state_ = State::kDataEndLF;
        } else if (c == '\n') {
          state_ = State::kDelimiter;
          matched_ = 0;
        } else {
          return Malformed(PartName() + " does not end where its Content-Range says");
        }
        ++i;
        break;

      case State::kDelimiter:
        if (c != dash_boundary_[matched_]) {
          return Malformed(PartName() + " is not followed by the delimiter '" + dash_boundary_ +
                           "'");
        }
        if (++matched_ == dash_boundary_.size()) {
          matched_ = 0;
          state_ = State::kAfterBoundary;
        }
        ++i;
        break;

      case State::kEpilogue:
        return Status::OK();
    }
  }
  return Status::OK();
}

void ByteRangesParser::StartPart() {
  state_ = State::kHeaders;
  in_preamble_ = false;
  ++parts_;
  line_.clear();
  header_bytes_ = 0;
  content_range_.clear();
  has_content_range_ = false;
  last_was_content_range_ = false;
  range_ = ContentRange();
}

Status ByteRangesParser::EndHeaderLine() {
  std::string_view line = line_;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty()) {
    line_.clear();
    return EndHeaders();
  }
  if (line.front() == ' ' || line.front() == '\t') {  // obs-fold: continues the last header
    if (last_was_content_range_) content_range_ += " " + std::string(TrimWhitespace(line));
  } else {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return Malformed("part " + std::to_string(parts_) + " has a header line without a name: '" +
                       std::string(line.substr(0, 80)) + "'");
    }
    last_was_content_range_ = AsciiLower(TrimWhitespace(line.substr(0, colon))) == "content-range";
    if (last_was_content_range_) {
      if (has_content_range_) {
        return Malformed("part " + std::to_string(parts_) + " has two Content-Range headers");
      }
      has_content_range_ = true;
      content_range_ = std::string(TrimWhitespace(line.substr(colon + 1)));
    }
  }
  line_.clear();
  return Status::OK();
}

Status ByteRangesParser::EndHeaders() {
  const std::string part = "part " + std::to_string(parts_);
  if (!has_content_range_) return Malformed(part + " has no Content-Range header");
  std::optional<ContentRange> range = ParseContentRange(content_range_);
  if (!range || !range->first) {
    return Malformed(part + " has an unusable Content-Range '" + content_range_ + "'");
  }
  range_ = *range;
  SA_RETURN_IF_ERROR(on_part_(range_));
  offset_ = *range_.first;
  remaining_ = *range_.last - *range_.first + 1;
  state_ = State::kData;
  return Status::OK();
}

Status ByteRangesParser::Finish() const {
  if (state_ == State::kEpilogue) return Status::OK();
  if (in_preamble_) {
    return Status::Unsupported(
        context_, "not a multipart/byteranges body: no delimiter line '" + dash_boundary_ + "'");
  }
  std::string where;
  if (state_ == State::kData) {
    where = "in the middle of " + PartName() + ", " + std::to_string(remaining_) +
            " of its bytes missing";
  } else if (state_ == State::kHeaders) {
    where = "in the headers of part " + std::to_string(parts_);
  } else {
    where = "after " + PartName() + " without the closing delimiter '" + dash_boundary_ + "--'";
  }
  return Status::Network(context_, "multipart/byteranges body cut off " + where);
}

}  // namespace sync_agent
