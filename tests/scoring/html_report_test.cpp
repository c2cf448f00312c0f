// The HTML report (scoring/tables/html_report.h): every number printed from
// the data equals the JSON it came from; the page is self-contained; and it
// renders in a real headless browser (Debian's chromium) without console
// messages, leaving a screenshot in build/test-artifacts/ (or
// $QSWEEP_TEST_ARTIFACTS), which .ci/run copies to the CI artifacts.

#include <cstdio>
#include <cstdlib>
#include <regex>
#include <set>

#include <gtest/gtest.h>

#include "scoring/tables/formats.h"
#include "scoring/tables/html_report.h"
#include "scoring/tables/reproduce.h"
#include "scoring/tables/table.h"
#include "tests/scoring/tables_test_util.h"
#include "tests/testutil.h"

namespace qsweep::scoring::tables {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;
using qsweep::testing::TempDir;
using qsweep::testing::read_file;
using qsweep::testing::write_file;

const char* k_manifest = R"(version: 1
name: report
title: "Published"
experiment: exp.yaml
table: tables
tolerance: {abs: 0.5, k_stderr: 2}
columns:
  arc: {task: arc, metric: "acc_norm,none"}
  gsm: {task: gsm, metric: "exact_match,strict-match"}
rows:
  - {table: "Table 1", row: {model: m, recipe: BF16}, values: {arc: 50.3, gsm: 21.9}, average: 36.0}
  - {table: "Table 1", row: {model: m, recipe: q4}, values: {arc: 47.5, gsm: 30.0}}
findings:
  - id: f
    text: "BF16 beats q4 on ARC"
    checks: [{kind: beats, a: {recipe: BF16}, b: {recipe: q4}, columns: [arc]}]
)";

struct Report {
  json table, reproduction;
  std::string html;
};

Report make_report() {
  auto scores = two_row_scores();
  scores[3].limit = 40;  // a limited cell
  Layout l = layout_mr();
  l.title = "Report <test> & \"quotes\"";
  l.column_decimals["gsm"] = 3;
  Report r;
  r.table = build_table(scores, two_row_models(), l).to_json();
  TempDir d;
  write_file(d / "m.yaml", k_manifest);
  r.reproduction = reproduce(load_manifest(d / "m.yaml"), r.table);
  r.html = html_report(r.table, r.reproduction);
  return r;
}

TEST(HtmlReport, EveryNumberEqualsTheJson) {
  const Report r = make_report();
  const json doc = {{"table", r.table}, {"reproduction", r.reproduction}};
  const std::regex re(
      R"re(<(span|text|tspan|b) data-p="([^"]*)"(?: data-d="(\d+)")?((?: data-[a-z]+="[^"]*")*)[^>]*>([^<]*)</\1>)re");
  std::set<std::string> seen;
  size_t n = 0;
  for (auto it = std::sregex_iterator(r.html.begin(), r.html.end(), re); it != std::sregex_iterator(); ++it) {
    const std::smatch& m = *it;
    const std::string ptr = m[2], attrs = m[4], text = m[5];
    ASSERT_TRUE(doc.contains(json::json_pointer(ptr))) << ptr;
    const json& v = doc.at(json::json_pointer(ptr));
    ASSERT_TRUE(v.is_number()) << ptr << " = " << v.dump();
    double x = v.get<double>();
    std::string want;
    if (attrs.find("data-f=\"bytes\"") != std::string::npos) {
      want = fmt_bytes(x);
    } else {
      ASSERT_TRUE(m[3].matched) << "a number without data-d: " << m.str();
      if (attrs.find("data-abs=\"1\"") != std::string::npos) x = std::abs(x);
      want = fmt_fixed(x, std::stoi(m[3]));
    }
    EXPECT_EQ(text, want) << ptr;
    seen.insert(ptr);
    ++n;
  }
  EXPECT_GT(n, 40u);
  // Every cell value and difference, every average, every reproduction
  // number and every size of the JSON is on the page.
  for (size_t i = 0; i < r.table["rows"].size(); ++i) {
    const json& row = r.table["rows"][i];
    const std::string p = "/table/rows/" + std::to_string(i);
    for (const auto& [col, cell] : row["cells"].items()) {
      EXPECT_TRUE(seen.count(p + "/cells/" + col + "/value")) << p << " " << col;
      if (cell["diff"].is_number()) EXPECT_TRUE(seen.count(p + "/cells/" + col + "/diff")) << p << " " << col;
    }
    EXPECT_TRUE(seen.count(p + "/average/value")) << p;
    EXPECT_TRUE(seen.count(p + "/storage/measured_bytes")) << p;
    EXPECT_TRUE(seen.count(p + "/storage/nominal_bytes")) << p;
  }
  for (size_t i = 0; i < r.reproduction["cells"].size(); ++i)
    for (const char* k : {"published", "measured", "diff"})
      if (r.reproduction["cells"][i][k].is_number())
        EXPECT_TRUE(seen.count("/reproduction/cells/" + std::to_string(i) + "/" + k)) << i << " " << k;
  // The gsm column's own 3 decimals.
  EXPECT_NE(r.html.find(">25.000</span>"), std::string::npos);
}

TEST(HtmlReport, SelfContainedEscapedAndShowsProvenance) {
  const Report r = make_report();
  EXPECT_EQ(r.html.find("<script"), std::string::npos);
  EXPECT_EQ(r.html.find("<link"), std::string::npos);
  EXPECT_EQ(r.html.find(" src="), std::string::npos);
  std::string rest = r.html;
  for (size_t p; (p = rest.find("http://www.w3.org/2000/svg")) != std::string::npos;) rest.erase(p, 26);
  EXPECT_EQ(rest.find("http://"), std::string::npos);
  EXPECT_EQ(rest.find("https://"), std::string::npos);
  EXPECT_NE(r.html.find("<title>Report &lt;test&gt; &amp; &quot;quotes&quot;</title>"), std::string::npos);
  // Hover text of the limited cell: samples, --limit, the score artifact's key.
  EXPECT_NE(r.html.find("n = 100; stderr 4.300; --limit 40\nscore_key: k-m-q4-gsm"), std::string::npos);
  EXPECT_NE(r.html.find(">25.000</span> <span class=\"up\">▲<span"), std::string::npos);
  EXPECT_NE(r.html.find("class=\"v-within_noise\">within_noise</td>"), std::string::npos);
  EXPECT_NE(r.html.find("<span class=\"f-supported\">supported</span> BF16 beats q4 on ARC"), std::string::npos);
  size_t svgs = 0;
  for (size_t p = 0; (p = r.html.find("<svg", p)) != std::string::npos; ++p) ++svgs;
  EXPECT_EQ(svgs, 4u);  // size plot, heatmap, one bar chart per task
}

// Debian's chromium, headless: exit 0, no console message, a screenshot, and
// the DOM it built holds the table and the plots.
TEST(HtmlReport, RendersInHeadlessChromium) {
  std::string browser;
  for (const char* b : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (fs::exists(b)) browser = b;
  if (browser.empty())
    GTEST_SKIP() << "chromium is not installed (scripts/setup.sh installs Debian's chromium for this test)";
  const Report r = make_report();
  TempDir d;
  write_file(d / "report.html", r.html);
  fs::path shots = QSWEEP_TEST_ARTIFACTS_DEFAULT;  // build/test-artifacts
  if (const char* a = std::getenv("QSWEEP_TEST_ARTIFACTS"); a && *a) shots = a;
  fs::create_directories(shots);
  const fs::path png = shots / "report.png";
  fs::remove(png);
  const std::string flags = " --headless=new --no-sandbox --disable-gpu --hide-scrollbars --no-first-run"
                            " --user-data-dir=" + (d / "profile").string();
  const std::string url = "file://" + (d / "report.html").string();
  const std::string shot_cmd = "timeout 120 " + browser + flags + " --window-size=1280,2000 --screenshot=" +
                               png.string() + " --enable-logging=stderr --v=0 " + url + " > " +
                               (d / "shot.log").string() + " 2>&1";
  ASSERT_EQ(std::system(shot_cmd.c_str()), 0) << read_file(d / "shot.log");
  ASSERT_TRUE(fs::exists(png)) << read_file(d / "shot.log");
  EXPECT_GT(fs::file_size(png), 20000u) << "a blank page? " << png;
  const std::string log = read_file(d / "shot.log");
  // Page console output (errors, failed loads) is logged as CONSOLE(...).
  EXPECT_EQ(log.find("CONSOLE"), std::string::npos) << log;
  EXPECT_EQ(log.find("Uncaught"), std::string::npos) << log;
  const std::string dom_cmd = "timeout 120 " + browser + flags + " --dump-dom " + url + " > " +
                              (d / "dom.html").string() + " 2> " + (d / "dom.log").string();
  ASSERT_EQ(std::system(dom_cmd.c_str()), 0) << read_file(d / "dom.log");
  const std::string dom = read_file(d / "dom.html");
  EXPECT_NE(dom.find("<table class=\"results\">"), std::string::npos) << dom.substr(0, 500);
  size_t svgs = 0;
  for (size_t p = 0; (p = dom.find("<svg", p)) != std::string::npos; ++p) ++svgs;
  EXPECT_EQ(svgs, 4u);
  std::printf("screenshot: %s\n", png.c_str());
}

}  // namespace
}  // namespace qsweep::scoring::tables
