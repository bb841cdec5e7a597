/**
 * completion bash|zsh: a completion script generated from the program's own command tree, so
 * a new command or flag completes without touching this file.
 */
import type { Command } from "commander";
import { examples } from "../help.ts";
import { printJson } from "../output.ts";

interface Node {
  name: string;
  description: string;
  options: { flag: string; description: string }[];
  commands: Node[];
}

export function registerCompletion(program: Command): void {
  program
    .command("completion")
    .description("Print a shell completion script")
    .argument("<shell>", "bash or zsh")
    .option("--json", "print { shell, script } on stdout")
    .addHelpText(
      "after",
      examples(
        "source <(kiln completion bash)                     # this shell",
        "kiln completion bash > /etc/bash_completion.d/kiln",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a zsh expression, printed as is
        'kiln completion zsh > "${fpath[1]}/_kiln"          # then: compinit',
      ),
    )
    .action((shell: string, flags: { json?: boolean }, command: Command) => {
      if (shell !== "bash" && shell !== "zsh")
        command.error(`error: completion takes bash or zsh, not "${shell}"`, { exitCode: 2, code: "kiln.badShell" });
      const root = tree(program);
      const script = shell === "bash" ? bashScript(root) : zshScript(root);
      if (flags.json) printJson({ shell, script });
      else process.stdout.write(script);
    });
}

function tree(command: Command): Node {
  return {
    name: command.name(),
    description: command.description(),
    options: [
      ...command.options,
      ...(command.commands.length === 0 ? [command.createOption("-h, --help", "show help")] : []),
    ]
      .filter((o) => !o.hidden)
      .flatMap((o) =>
        [o.long, o.short].filter((f): f is string => Boolean(f)).map((flag) => ({ flag, description: o.description })),
      ),
    commands: command.commands.filter((c) => !(c as Command & { _hidden?: boolean })._hidden).map(tree),
  };
}

/** The first word names a command; a second one a subcommand of a group; then flags of that command. */
export function bashScript(root: Node): string {
  const cases: string[] = [];
  for (const cmd of root.commands) {
    if (cmd.commands.length > 0) {
      const subs = cmd.commands
        .map((s) => `        ${s.name}) words="${s.options.map((o) => o.flag).join(" ")}" ;;`)
        .join("\n");
      cases.push(
        `    ${cmd.name})\n      case "$sub" in\n        "") words="${cmd.commands.map((s) => s.name).join(" ")}" ;;\n${subs}\n      esac ;;`,
      );
    } else cases.push(`    ${cmd.name}) words="${cmd.options.map((o) => o.flag).join(" ")}" ;;`);
  }
  return `# kiln completion for bash: source <(kiln completion bash)
_kiln() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" cmd="" sub="" words="" i w
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ "$w" == -* ]] && continue
    if [[ -z "$cmd" ]]; then cmd="$w"; elif [[ -z "$sub" ]]; then sub="$w"; fi
  done
  case "$cmd" in
    "") words="${root.commands.map((c) => c.name).join(" ")} help" ;;
${cases.join("\n")}
  esac
  if [[ -z "$cmd" || "$cur" == -* || ( -n "$cmd" && -z "$sub" && "$words" != -* && -n "$words" ) ]]; then
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
  fi
}
complete -o default -F _kiln kiln
`;
}

export function zshScript(root: Node): string {
  const q = (text: string) =>
    text
      .replace(/\\/g, "\\\\")
      .replace(/'/g, "'\\''")
      .replace(/([:[\]])/g, "\\$1");
  const describe = (nodes: Node[]) => nodes.map((n) => `'${n.name}:${q(n.description)}'`).join(" ");
  const args = (node: Node) => node.options.map((o) => `'${o.flag}[${q(o.description)}]'`).join(" ");
  const cases = root.commands.map((cmd) => {
    if (cmd.commands.length === 0) return `    ${cmd.name}) _arguments -s ${args(cmd)} '*:file:_files' ;;`;
    const subs = cmd.commands.map((s) => `        ${s.name}) _arguments -s ${args(s)} '*:file:_files' ;;`).join("\n");
    return `    ${cmd.name})
      if (( CURRENT == 2 )); then
        local -a subs; subs=(${describe(cmd.commands)}); _describe 'subcommand' subs
      else
        shift words; (( CURRENT-- ))
        case $words[1] in
${subs}
        esac
      fi ;;`;
  });
  return `#compdef kiln
# kiln completion for zsh: kiln completion zsh > "\${fpath[1]}/_kiln", or source <(kiln completion zsh)
_kiln() {
  if (( CURRENT == 2 )); then
    local -a cmds; cmds=(${describe(root.commands)} 'help:show help for a command'); _describe 'command' cmds
    return
  fi
  shift words; (( CURRENT-- ))
  case $words[1] in
${cases.join("\n")}
  esac
}
if [[ "$funcstack[1]" == "_kiln" ]]; then _kiln "$@"; else compdef _kiln kiln; fi
`;
}
