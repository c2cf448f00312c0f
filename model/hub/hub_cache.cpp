#include "model/hub/hub_cache.h"

#include <openssl/evp.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <random>

namespace qsweep::model {

namespace fs = std::filesystem;

std::string repo_folder_name(RepoType type, const std::string& repo_id) {
  std::string r = std::string(repo_type_name(type)) + "s";
  size_t start = 0;
  while (true) {
    size_t slash = repo_id.find('/', start);
    r += "--" +
         repo_id.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return r;
}

HubCacheRepo::HubCacheRepo(const fs::path& hub_cache, RepoType type, const std::string& repo_id)
    : dir_(hub_cache / repo_folder_name(type, repo_id)) {}

std::string HubCacheRepo::read_ref(const std::string& revision) const {
  std::error_code ec;
  if (is_commit_sha(revision)) return fs::is_directory(snapshot_dir(revision), ec) ? revision : "";
  std::string err;
  if (!check_repo_path(revision, &err)) return "";
  std::ifstream f(dir_ / "refs" / revision);
  std::string sha;
  if (!f || !std::getline(f, sha)) return "";
  while (!sha.empty() && (sha.back() == '\r' || sha.back() == ' ')) sha.pop_back();
  return is_commit_sha(sha) ? sha : "";
}

bool HubCacheRepo::write_ref(const std::string& revision, const std::string& sha,
                             std::string* err) const {
  if (revision == sha) return true;
  if (!check_repo_path(revision, err)) return false;
  if (read_ref(revision) == sha) return true;
  fs::path ref = dir_ / "refs" / revision;
  std::error_code ec;
  fs::create_directories(ref.parent_path(), ec);
  fs::path tmp = ref;
  tmp += ".tmp" + std::to_string(std::random_device{}());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << sha;
    if (!f.flush()) {
      *err = "cannot write " + tmp.string();
      return false;
    }
  }
  fs::rename(tmp, ref, ec);
  if (ec) {
    fs::remove(tmp, ec);
    *err = "cannot write " + ref.string() + ": " + ec.message();
    return false;
  }
  return true;
}

fs::path HubCacheRepo::cached_file(const std::string& sha, const std::string& rel) const {
  std::string err;
  if (!check_repo_path(rel, &err)) return {};
  fs::path p = snapshot_dir(sha) / rel;
  std::error_code ec;
  fs::path real = fs::canonical(p, ec);
  if (ec || !fs::is_regular_file(real, ec)) return {};
  fs::path root = fs::canonical(dir_, ec);
  if (ec) return {};
  auto [mr, mp] = std::mismatch(root.begin(), root.end(), real.begin(), real.end());
  if (mr != root.end()) return {};  // a symlink out of the repo folder: not ours
  return real;
}

bool HubCacheRepo::link_snapshot(const std::string& sha, const std::string& rel,
                                 const std::string& etag, std::string* err) const {
  if (!check_repo_path(rel, err)) return false;
  fs::path link = snapshot_dir(sha) / rel;
  std::error_code ec;
  fs::create_directories(link.parent_path(), ec);
  std::string target;
  size_t depth = std::count(rel.begin(), rel.end(), '/');
  for (size_t i = 0; i < depth + 2; ++i) target += "../";
  target += "blobs/" + etag;
  fs::remove(link, ec);
  fs::create_symlink(target, link, ec);
  if (ec) {
    *err = "cannot create " + link.string() + ": " + ec.message();
    return false;
  }
  return true;
}

std::vector<std::string> HubCacheRepo::list_snapshot(const std::string& sha) const {
  std::vector<std::string> r;
  fs::path root = snapshot_dir(sha);
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec)) continue;
    std::string rel = it->path()
                          .lexically_relative(root)
                          .generic_string();  // not fs::relative: it resolves links
    if (!cached_file(sha, rel).empty()) r.push_back(rel);
  }
  std::sort(r.begin(), r.end());
  return r;
}

namespace {

// Digest of prefix + the file's content with md; lowercase hex.
bool digest_file(const EVP_MD* md_type, const std::string& prefix, const fs::path& p,
                 std::string* hex, std::string* err, const std::function<bool()>& should_abort) {
  std::ifstream f(p, std::ios::binary);
  if (!f) {
    *err = "cannot read " + p.string();
    return false;
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), md_type, nullptr);
  EVP_DigestUpdate(ctx.get(), prefix.data(), prefix.size());
  std::vector<char> buf(1 << 20);
  while (f) {
    if (should_abort && should_abort()) {
      *err = "cancelled";
      return false;
    }
    f.read(buf.data(), buf.size());
    if (f.gcount() > 0) EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(f.gcount()));
  }
  if (f.bad()) {
    *err = "read error on " + p.string();
    return false;
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &n);
  static const char* k_hex = "0123456789abcdef";
  hex->clear();
  for (unsigned i = 0; i < n; ++i) {
    *hex += k_hex[md[i] >> 4];
    *hex += k_hex[md[i] & 15];
  }
  return true;
}

}  // namespace

bool git_blob_id_file(const fs::path& p, std::string* hex, std::string* err) {
  std::error_code ec;
  uintmax_t size = fs::file_size(p, ec);
  if (ec) {
    *err = "cannot read " + p.string() + ": " + ec.message();
    return false;
  }
  std::string prefix = "blob " + std::to_string(size);
  prefix.push_back('\0');
  return digest_file(EVP_sha1(), prefix, p, hex, err, {});
}

bool sha256_file(const fs::path& p, std::string* hex, std::string* err,
                 const std::function<bool()>& should_abort) {
  return digest_file(EVP_sha256(), "", p, hex, err, should_abort);
}

bool link_or_copy(const fs::path& src, const fs::path& dst, std::string* err) {
  std::error_code ec;
  fs::create_directories(dst.parent_path(), ec);
  fs::remove(dst, ec);
  fs::create_hard_link(src, dst, ec);
  if (!ec) return true;
  ec.clear();
  fs::copy_file(src, dst, fs::copy_options::overwrite_existing, ec);
  if (ec) {
    *err = "cannot copy " + src.string() + " to " + dst.string() + ": " + ec.message();
    return false;
  }
  return true;
}

}  // namespace qsweep::model
