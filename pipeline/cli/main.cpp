// qsweep: a declarative experiment-pipeline runner for quantized-LLM evaluation.
#include "pipeline/cli/app.h"

int main(int argc, char** argv) { return qsweep::cli::run_cli(argc, argv); }
