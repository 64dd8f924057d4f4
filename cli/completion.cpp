#include "cli/completion.hpp"

#include <algorithm>

#include "cli/cli_walk.hpp"

namespace bulkhead::cli {

namespace {

// Single-quoted for bash.
std::string quote(const std::string &s) {
  std::string out = "'";
  for (char c : s)
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string identifier(const std::string &name) {
  std::string id;
  for (char c : name)
    id += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return id;
}

struct Tables {
  std::string subs, flags, value_flags, positional;
};

std::string join(const std::vector<std::string> &words) {
  std::string out;
  for (const auto &w : words)
    out += (out.empty() ? "" : " ") + w;
  return out;
}

// Programs with CLI11's fallthrough let options of a parent follow its subcommands, so each level
// then also offers its ancestors' flags (CompletionInfo::inherit_flags).
void walk(const CLI::App &app, std::vector<const CLI::Option *> inherited, bool inherit,
          const std::string &var, Tables &t) {
  // Keys carry a leading "_": bash refuses an empty subscript, and the root's path is empty.
  const std::string key = quote("_" + command_path(app));
  std::vector<std::string> subs, flags, value_flags, pos;
  for (const CLI::App *sub : visible_subcommands(app))
    subs.push_back(sub->get_name());
  auto options = visible_options(app);
  options.insert(options.end(), inherited.begin(), inherited.end());
  for (const CLI::Option *o : options)
    for (const auto &s : option_spellings(*o)) {
      flags.push_back(s);
      if (takes_value(*o))
        value_flags.push_back(s);
    }
  flags.push_back("--help");
  for (const CLI::Option *p : positionals(app))
    pos.push_back(p->get_name());
  t.subs += var + "_subs[" + key + "]=" + quote(join(subs)) + "\n";
  t.flags += var + "_flags[" + key + "]=" + quote(join(flags)) + "\n";
  t.value_flags += var + "_value_flags[" + key + "]=" + quote(join(value_flags)) + "\n";
  t.positional += var + "_positionals[" + key + "]=" + quote(join(pos)) + "\n";
  auto own = visible_options(app);
  if (inherit)
    inherited.insert(inherited.end(), own.begin(), own.end());
  for (const CLI::App *sub : visible_subcommands(app))
    walk(*sub, inherited, inherit, var, t);
}

} // namespace

std::string generate_bash_completion(const CLI::App &app, const CompletionInfo &info) {
  const std::string program = app.get_name();
  const std::string var = "_" + identifier(program);
  Tables t;
  walk(app, {}, info.inherit_flags, var, t);
  std::string dynamic;
  for (const auto &[key, command] : info.dynamic)
    dynamic += var + "_dynamic[" + quote("_" + key) + "]=" + quote(command) + "\n";
  std::vector<std::string> files = info.file_flags;
  std::string out = "# bash completion for " + program + ", generated from its command-line definition by `" +
                    program + " --generate-completion`.\n";
  out += "declare -gA " + var + "_subs " + var + "_flags " + var + "_value_flags " + var + "_positionals " +
         var + "_dynamic\n";
  out += t.subs + t.flags + t.value_flags + t.positional + dynamic;
  out += var + "_file_flags=" + quote(" " + join(files) + " ") + "\n";
  // The walk: words that name a subcommand of the current level extend the path until the first
  // positional; a value flag swallows the next word; after "--" everything is a positional.
  out += R"(
VAR() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
  local path="" npos=0 skip=0 dashdash=0 i w
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    if ((skip)); then skip=0; continue; fi
    if ((!dashdash)) && [[ $w == -- ]]; then dashdash=1; continue; fi
    if ((!dashdash)) && [[ $w == -* ]]; then
      [[ $w != *=* && " ${VAR_value_flags[_$path]} " == *" $w "* ]] && skip=1
      continue
    fi
    if ((npos == 0 && !dashdash)) && [[ " ${VAR_subs[_$path]} " == *" $w "* ]]; then
      path=${path:+$path }$w
      continue
    fi
    ((npos++))
  done
  local key words
  if ((!dashdash)) && [[ $prev == -* && " ${VAR_value_flags[_$path]} " == *" $prev "* ]]; then
    key="_$path:$prev"
    if [[ -n ${VAR_dynamic[$key]} ]]; then
      words=$(eval "${VAR_dynamic[$key]}")
      mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
    elif [[ $VAR_file_flags == *" $prev "* ]]; then
      mapfile -t COMPREPLY < <(compgen -f -- "$cur")
    fi
    return 0
  fi
  if ((!dashdash)) && [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "${VAR_flags[_$path]}" -- "$cur")
    return 0
  fi
  if ((npos == 0)) && [[ -n ${VAR_subs[_$path]} ]]; then
    mapfile -t COMPREPLY < <(compgen -W "${VAR_subs[_$path]}" -- "$cur")
    return 0
  fi
  local -a names=(${VAR_positionals[_$path]})
  ((npos >= ${#names[@]})) && return 0
  key="_$path:${names[npos]}"
  if [[ -n ${VAR_dynamic[$key]} ]]; then
    words=$(eval "${VAR_dynamic[$key]}")
    mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
  fi
  return 0
}
complete -o default -F VAR PROGRAM
)";
  for (size_t pos; (pos = out.find("VAR")) != std::string::npos;)
    out.replace(pos, 3, var);
  for (size_t pos; (pos = out.find("PROGRAM")) != std::string::npos;)
    out.replace(pos, 7, program);
  return out;
}

} // namespace bulkhead::cli
