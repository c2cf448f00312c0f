#include "pipeline/node_task.h"

#include <fstream>
#include <sstream>

#include "cache/atomic_file.h"
#include "qsweep_version.h"

namespace qsweep {

namespace fs = std::filesystem;
using nlohmann::json;

NodeTask make_node_task(const Graph& g, const ScanResult& scan, const cache::Store& store, int i) {
  const Node& n = g.nodes[i];
  NodeTask t;
  t.node = n.id;
  t.kind = n.kind;
  t.key = scan.nodes[i].key;
  t.stage_version = n.impl ? n.impl->version() : 0;
  t.experiment = g.experiment;
  t.experiment_dir = g.experiment_dir;
  t.params = n.params;
  t.key_fields = scan.nodes[i].fields;
  t.resources = n.resources;
  t.retries = n.retries;
  for (const auto& in : n.inputs) {
    ResolvedInput ri{in.name, in.is_list, {}};
    for (const auto& it : in.items) {
      if (it.node >= 0) {
        const std::string& k = scan.nodes[it.node].key;
        ri.items.push_back({g.nodes[it.node].id, k, store.output_dir(k), g.nodes[it.node].axes});
      } else {
        ri.items.push_back({"file:" + it.file_shown, scan.file_digests.at(it.file), it.file, {}});
      }
    }
    t.inputs[in.name] = std::move(ri);
  }
  return t;
}

json node_task_to_json(const NodeTask& t) {
  json inputs = json::object();
  for (const auto& [name, ri] : t.inputs) {
    json items = json::array();
    for (const auto& a : ri.items) {
      json axes = json::array();
      for (const auto& [k, v] : a.axes) axes.push_back({k, v});
      items.push_back({{"node", a.node}, {"key", a.key}, {"path", a.path.string()}, {"axes", axes}});
    }
    inputs[name] = {{"is_list", ri.is_list}, {"items", items}};
  }
  json fields = json::array();
  for (const auto& f : t.key_fields) fields.push_back({{"name", f.name}, {"value", f.value}});
  return {{"format", "qsweep-node-plan"},
          {"version", k_node_plan_version},
          {"node", t.node},
          {"kind", t.kind},
          {"key", t.key},
          {"stage_version", t.stage_version},
          {"experiment", t.experiment},
          {"experiment_dir", t.experiment_dir.string()},
          {"params", t.params},
          {"inputs", inputs},
          {"key_fields", fields},
          {"resources",
           {{"threads", t.resources.threads}, {"memory", t.resources.memory}, {"gpu", t.resources.gpu},
            {"api", t.resources.api}}},
          {"retries", t.retries},
          {"qsweep_version", QSWEEP_VERSION}};
}

bool node_task_from_json(const json& j, NodeTask* t, std::string* err) {
  try {
    if (!j.is_object() || j.value("format", "") != "qsweep-node-plan") {
      *err = "not a qsweep node plan (\"format\" is not \"qsweep-node-plan\")";
      return false;
    }
    if (j.value("version", 0) != k_node_plan_version) {
      *err = "node plan version " + j.value("version", json()).dump() + " is not " +
             std::to_string(k_node_plan_version) + " (written by another qsweep version; rerun `qsweep run`)";
      return false;
    }
    t->node = j.at("node").get<std::string>();
    t->kind = j.at("kind").get<std::string>();
    t->key = j.at("key").get<std::string>();
    t->stage_version = j.at("stage_version").get<int64_t>();
    t->experiment = j.at("experiment").get<std::string>();
    t->experiment_dir = j.at("experiment_dir").get<std::string>();
    t->params = j.at("params");
    t->inputs.clear();
    for (const auto& [name, ri] : j.at("inputs").items()) {
      ResolvedInput r{name, ri.at("is_list").get<bool>(), {}};
      for (const auto& a : ri.at("items")) {
        InputArtifact ia{a.at("node").get<std::string>(), a.at("key").get<std::string>(),
                         a.at("path").get<std::string>(), {}};
        for (const auto& ax : a.at("axes")) ia.axes.emplace_back(ax.at(0).get<std::string>(), ax.at(1).get<std::string>());
        r.items.push_back(std::move(ia));
      }
      t->inputs[name] = std::move(r);
    }
    t->key_fields.clear();
    for (const auto& f : j.at("key_fields"))
      t->key_fields.push_back({f.at("name").get<std::string>(), f.at("value").get<std::string>()});
    const json& r = j.at("resources");
    t->resources.threads = r.at("threads").get<int>();
    t->resources.memory = r.at("memory").get<uint64_t>();
    t->resources.gpu = r.at("gpu").get<int>();
    t->resources.api = r.at("api").get<int>();
    t->retries = j.at("retries").get<int>();
  } catch (const std::exception& e) {
    *err = std::string("malformed node plan: ") + e.what();
    return false;
  }
  return true;
}

fs::path node_plan_path(const cache::Store& store, const std::string& key) {
  return store.root() / "plans" / (key + ".json");
}

bool write_node_plan(const cache::Store& store, const NodeTask& t, std::string* err) {
  return cache::write_file_atomic(node_plan_path(store, t.key), node_task_to_json(t).dump(1) + "\n", err);
}

bool read_node_plan(const cache::Store& store, const std::string& key, NodeTask* t, std::string* err) {
  const fs::path path = node_plan_path(store, key);
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    *err = "no node plan " + path.string() +
           " (the runner writes it before submitting the node; is this the cache the runner used, "
           "and is it on a filesystem this host sees?)";
    return false;
  }
  std::stringstream ss;
  ss << f.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded()) {
    *err = path.string() + ": not valid JSON (a truncated write?); rerun `qsweep run` to rewrite it";
    return false;
  }
  if (!node_task_from_json(j, t, err)) {
    *err = path.string() + ": " + *err;
    return false;
  }
  if (t->key != key) {
    *err = path.string() + ": holds key " + t->key + ", not " + key;
    return false;
  }
  return true;
}

}  // namespace qsweep
