#include <unistd.h>

#include <atomic>
#include <vector>

#include "common/fs/env.h"

namespace sync_agent {

std::string JoinPath(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  std::string out(a);
  if (out.back() != '/') out.push_back('/');
  while (!b.empty() && b.front() == '/') b.remove_prefix(1);
  out.append(b);
  return out;
}

std::string DirName(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t pos = path.rfind('/');
  if (pos == std::string_view::npos) return ".";
  if (pos == 0) return "/";
  return std::string(path.substr(0, pos));
}

std::string BaseName(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t pos = path.rfind('/');
  if (pos == std::string_view::npos) return std::string(path);
  return std::string(path.substr(pos + 1));
}

std::string RootedPath::full() const { return JoinPath(root, rel); }

RootedPath RootedPath::Child(std::string_view name) const { return {root, JoinPath(rel, name)}; }

RootedPath RootedPath::Parent() const {
  size_t pos = rel.find_last_of('/');
  return {root, pos == std::string::npos ? std::string() : rel.substr(0, pos)};
}

Status RefuseForeignPath(const std::string& path, std::string_view what_it_is,
                         std::string_view expected) {
  return Status::InvalidArgument(
      path, std::string(what_it_is) + " where sync-agent expects its own " + std::string(expected) +
                "; refusing to follow it, nothing was written or removed through it. sync-agent "
                "never creates it: move it away and run again");
}

bool FileExists(Env* env, const std::string& path) { return env->Lstat(path).ok(); }

Status CreateDirs(Env* env, const std::string& path, uint32_t mode) {
  if (path.empty() || path == "/" || path == ".") return Status::OK();
  auto st = env->Stat(path);
  if (st.ok()) {
    if (st->type == FileInfo::Type::kDirectory) return Status::OK();
    return Status::IOError("create directory " + path, "a file of that name is in the way");
  }
  SA_RETURN_IF_ERROR(CreateDirs(env, DirName(path), mode));
  return env->CreateDir(path, mode);
}

Status RemoveTree(Env* env, const std::string& path) {
  auto info = env->Lstat(path);
  if (!info.ok()) return info.status().IsNotFound() ? Status::OK() : info.status();
  if (info->type != FileInfo::Type::kDirectory) return env->RemoveFile(path);
  SA_ASSIGN_OR_RETURN(auto entries, env->ListDir(path));
  for (const auto& e : entries) {
    SA_RETURN_IF_ERROR(RemoveTree(env, JoinPath(path, e.name)));
  }
  return env->RemoveDir(path);
}

Result<std::string> ReadFileToString(Env* env, const std::string& path, uint64_t max_bytes) {
  SA_ASSIGN_OR_RETURN(auto file, env->NewSequentialFile(path));
  std::string out;
  char buf[65536];
  while (true) {
    SA_ASSIGN_OR_RETURN(size_t n, file->Read(buf, sizeof buf));
    if (n == 0) break;
    if (out.size() + n > max_bytes) {
      return Status::InvalidArgument("read " + path,
                                     "file is larger than " + std::to_string(max_bytes) + " bytes");
    }
    out.append(buf, n);
  }
  return out;
}

Status WriteFileAtomically(Env* env, const std::string& path, std::string_view data, uint32_t mode,
                           int64_t mtime_ns) {
  static std::atomic<uint64_t> counter{0};
  std::string tmp =
      JoinPath(DirName(path), "." + BaseName(path) + ".tmp." + std::to_string(::getpid()) + "." +
                                  std::to_string(counter.fetch_add(1)));
  Status s;
  {
    auto file = env->NewWritableFile(tmp, mode);
    if (!file.ok()) return file.status();
    s = (*file)->Append(data.data(), data.size());
    if (s.ok()) s = (*file)->Sync();
    if (s.ok()) s = (*file)->Close();
  }
  if (s.ok()) s = env->Chmod(tmp, mode);  // umask must not narrow what readers may see
  if (s.ok() && mtime_ns >= 0) s = env->SetModTime(tmp, mtime_ns);
  if (s.ok()) s = env->Rename(tmp, path);
  if (!s.ok()) {
    env->RemoveFile(tmp);
    return s;
  }
  return env->SyncDir(DirName(path));
}

namespace {

Status CopyInto(Env* env, const std::string& from, WritableFile* out) {
  SA_ASSIGN_OR_RETURN(auto in, env->NewSequentialFile(from));
  std::vector<char> buf(1 << 20);
  while (true) {
    SA_ASSIGN_OR_RETURN(size_t n, in->Read(buf.data(), buf.size()));
    if (n == 0) break;
    SA_RETURN_IF_ERROR(out->Append(buf.data(), n));
  }
  SA_RETURN_IF_ERROR(out->Sync());
  return out->Close();
}

}  // namespace

Status CopyFile(Env* env, const std::string& from, const std::string& to, uint32_t mode) {
  SA_ASSIGN_OR_RETURN(auto out, env->NewWritableFile(to, mode));
  SA_RETURN_IF_ERROR(CopyInto(env, from, out.get()));
  return env->Chmod(to, mode);
}

Status CopyFileTo(Env* env, const std::string& from, const RootedPath& to, uint32_t mode) {
  SA_ASSIGN_OR_RETURN(auto out, env->NewWritableFileAt(to, mode, WriteOpen::kCreateNew));
  SA_RETURN_IF_ERROR(CopyInto(env, from, out.get()));
  return env->ChmodAt(to, mode);
}

}  // namespace sync_agent
