#include "cli/manpage.hpp"

#include "cli/cli_walk.hpp"

namespace bulkhead::cli {

std::string roff_escape(const std::string &text) {
  std::string out;
  bool line_start = true;
  for (char c : text) {
    if (line_start && (c == '.' || c == '\''))
      out += "\\&";
    if (c == '\\')
      out += "\\e";
    else if (c == '-')
      out += "\\-";
    else
      out += c;
    line_start = c == '\n';
  }
  return out;
}

namespace {

std::string upper(std::string s) {
  for (char &c : s)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// "--memory SIZE": bold flags, italic value.
std::string option_term(const CLI::Option &o) {
  std::string term;
  for (const auto &s : option_spellings(o)) {
    if (!term.empty())
      term += ", ";
    term += "\\fB" + roff_escape(s) + "\\fR";
  }
  if (takes_value(o))
    term += " \\fI" + roff_escape(value_name(o)) + "\\fR";
  return term;
}

std::string option_items(const CLI::App &app) {
  std::string out;
  for (const CLI::Option *o : visible_options(app)) {
    std::string desc = o->get_description();
    if (!o->get_envname().empty())
      desc += " (environment: " + o->get_envname() + ")";
    if (!o->get_default_str().empty())
      desc += " (default: " + o->get_default_str() + ")";
    if (o->get_required())
      desc += " (required)";
    out += ".TP\n" + option_term(*o) + "\n" + roff_escape(desc) + "\n";
  }
  return out;
}

std::string usage(const CLI::App &app, const std::string &program) {
  std::string line = "\\fB" + roff_escape(program + " " + command_path(app)) + "\\fR";
  if (!visible_options(app).empty())
    line += " [\\fIOPTIONS\\fR]";
  for (const CLI::Option *p : positionals(app)) {
    std::string word = "\\fI" + roff_escape(p->get_name()) + "\\fR";
    if (p->get_items_expected_max() > 1)
      word += "...";
    line += " " + (p->get_required() ? word : "[" + word + "]");
  }
  if (!visible_subcommands(app).empty())
    line += " \\fICOMMAND\\fR";
  return line;
}

void commands(const CLI::App &app, const std::string &program, std::string &out) {
  for (const CLI::App *sub : visible_subcommands(app)) {
    out += ".SS \"" + roff_escape(program + " " + command_path(*sub)) + "\"\n";
    out += usage(*sub, program) + "\n.br\n" + roff_escape(sub->get_description()) + "\n";
    for (const CLI::Option *p : positionals(*sub))
      out += ".TP\n\\fI" + roff_escape(p->get_name()) + "\\fR\n" + roff_escape(p->get_description()) + "\n";
    out += option_items(*sub);
    commands(*sub, program, out);
  }
}

} // namespace

std::string generate_manpage(const CLI::App &app, const ManPageInfo &info) {
  const std::string program = app.get_name();
  std::string summary = app.get_description();
  // "prog: does x" reads as the NAME line "prog \- does x".
  if (summary.rfind(program + ": ", 0) == 0)
    summary.erase(0, program.size() + 2);
  std::string out = ".\\\" Generated from the command-line definition by " + program + " --generate-man.\n";
  out += ".TH " + upper(program) + " " + info.section + " \"" + info.date + "\" \"" +
         roff_escape(info.source) + "\" \"" + roff_escape(info.manual) + "\"\n";
  out += ".SH NAME\n" + roff_escape(program) + " \\- " + roff_escape(summary) + "\n";
  // A program without subcommands (bulkheadd) has only options: no COMMAND in the synopsis, no COMMANDS.
  const bool has_commands = !visible_subcommands(app).empty();
  out += ".SH SYNOPSIS\n\\fB" + roff_escape(program) + "\\fR [\\fIOPTIONS\\fR]" +
         (has_commands ? " \\fICOMMAND\\fR [\\fIARGS\\fR]" : "") + "\n";
  out += ".SH DESCRIPTION\n";
  std::string description = info.description.empty() ? summary : info.description;
  for (size_t start = 0; start <= description.size();) {
    size_t end = description.find("\n\n", start);
    std::string para = description.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!para.empty())
      out += ".PP\n" + roff_escape(para) + "\n";
    if (end == std::string::npos)
      break;
    start = end + 2;
  }
  out += ".SH OPTIONS\n" + option_items(app);
  out += ".TP\n\\fB\\-h\\fR, \\fB\\-\\-help\\fR\n" +
         std::string(has_commands ? "print help (after a command: that command's)" : "print help and exit") +
         "\n";
  if (has_commands) {
    out += ".SH COMMANDS\n";
    commands(app, program, out);
  }
  if (!info.see_also.empty())
    out += ".SH SEE ALSO\n" + roff_escape(info.see_also) + "\n";
  return out;
}

} // namespace bulkhead::cli
