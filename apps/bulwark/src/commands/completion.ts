import { Argument, type Command, type Option } from 'commander';

/**
 * `bulwark completion bash|zsh`: a completion script generated from the command tree itself,
 * so that every command, subcommand and option (and the values of options with a fixed list)
 * completes, and a new command completes as soon as it exists.
 */

interface Node {
  /** The words that lead to the command from `bulwark` ('' for the root). */
  readonly path: string;
  readonly subcommands: readonly { name: string; description: string }[];
  readonly options: readonly Option[];
}

/** Every command of the tree, depth first; the root's options (--profile, --help) hold everywhere. */
function walk(command: Command, path = '', inherited: readonly Option[] = []): Node[] {
  const own = command.options.filter((o) => o.long !== undefined);
  const options = [...own, ...inherited.filter((g) => !own.some((o) => o.long === g.long))];
  const subcommands = command.commands.flatMap((c) => [c.name(), ...c.aliases()].map((name) => ({ name, description: c.description() })));
  const globals = path === '' ? own.filter((o) => o.long !== '--version') : inherited;
  return [{ path, subcommands, options }, ...command.commands.flatMap((c) => walk(c, path === '' ? c.name() : `${path} ${c.name()}`, globals))];
}

/** Every option keeps --help; commander adds it to each command without listing it. */
const withHelp = (options: readonly Option[]) => [...options.map((o) => o.long as string), '--help'];
const quote = (text: string) => `'${text.replaceAll("'", "'\\''")}'`;
/** What follows an option: its choices, '@' for a free value (a file, an id), nothing for a flag. */
const valuesOf = (o: Option) => (o.argChoices ? o.argChoices.join(' ') : o.required || o.optional ? '@' : '');

function commandCase(nodes: readonly Node[]): string {
  return nodes
    .filter((n) => n.path !== '')
    .map((n) => quote(n.path))
    .join('|');
}

function valueCases(nodes: readonly Node[]): string[] {
  return nodes.flatMap((n) => n.options.filter((o) => valuesOf(o) !== '').map((o) => `    ${quote(`${n.path}|${o.long}`)}) echo ${quote(valuesOf(o))} ;;`));
}

export function bashScript(program: Command): string {
  const nodes = walk(program);
  const words = nodes.map((n) => `    ${quote(n.path)}) echo ${quote([...n.subcommands.map((s) => s.name), ...withHelp(n.options)].join(' '))} ;;`);
  return `# bash completion for bulwark, generated from its commands by "bulwark completion bash".
# Load it in this shell:  source <(bulwark completion bash)
# or for every shell:     bulwark completion bash > ~/.local/share/bash-completion/completions/bulwark

_bulwark_is_command() {
  case "$1" in
    ${commandCase(nodes)}) return 0 ;;
  esac
  return 1
}

_bulwark_words() {
  case "$1" in
${words.join('\n')}
  esac
}

_bulwark_values() {
  case "$1" in
${valueCases(nodes).join('\n')}
  esac
}

_bulwark() {
  local cur prev cmd word values i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  cmd=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    [[ "$word" == -* ]] && continue
    if _bulwark_is_command "\${cmd:+$cmd }$word"; then cmd="\${cmd:+$cmd }$word"; fi
  done
  values="$(_bulwark_values "$cmd|$prev")"
  if [[ "$values" == "@" ]]; then COMPREPLY=(); return 0; fi
  if [[ -n "$values" ]]; then COMPREPLY=($(compgen -W "$values" -- "$cur")); return 0; fi
  COMPREPLY=($(compgen -W "$(_bulwark_words "$cmd")" -- "$cur"))
}

complete -o default -F _bulwark bulwark
`;
}

/** zsh's _describe takes `name:description`; a colon in the name is escaped. */
const described = (name: string, description: string) => quote(`${name.replaceAll(':', '\\:')}:${description.split('\n')[0]?.slice(0, 100) ?? ''}`);

export function zshScript(program: Command): string {
  const nodes = walk(program);
  const items = nodes.map((n) => {
    const entries = [...n.subcommands.map((s) => described(s.name, s.description)), ...n.options.map((o) => described(o.long as string, o.description)), described('--help', 'show help')];
    return `    ${quote(n.path)}) items=(${entries.join(' ')}) ;;`;
  });
  return `#compdef bulwark
# zsh completion for bulwark, generated from its commands by "bulwark completion zsh".
# Load it in this shell (after compinit):  source <(bulwark completion zsh)
# or for every shell: bulwark completion zsh > "\${fpath[1]}/_bulwark"

_bulwark_is_command() {
  case "$1" in
    ${commandCase(nodes)}) return 0 ;;
  esac
  return 1
}

_bulwark_values() {
  case "$1" in
${valueCases(nodes).join('\n')}
  esac
}

_bulwark() {
  local cmd="" word values i
  local -a items
  for (( i = 2; i < CURRENT; i++ )); do
    word="\${words[i]}"
    [[ "$word" == -* ]] && continue
    if _bulwark_is_command "\${cmd:+$cmd }$word"; then cmd="\${cmd:+$cmd }$word"; fi
  done
  values="$(_bulwark_values "$cmd|\${words[CURRENT-1]}")"
  if [[ "$values" == "@" ]]; then _files; return; fi
  if [[ -n "$values" ]]; then compadd -- \${=values}; return; fi
  case "$cmd" in
${items.join('\n')}
  esac
  _describe 'bulwark' items
}

if [[ "\${funcstack[1]}" == "_bulwark" ]]; then
  _bulwark "$@"
else
  compdef _bulwark bulwark
fi
`;
}

export function addCompletionCommand(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script for bash or zsh (load it with: source <(bulwark completion bash))')
    .addArgument(new Argument('<shell>', 'the shell').choices(['bash', 'zsh']))
    .action((shell: 'bash' | 'zsh') => {
      process.stdout.write(shell === 'bash' ? bashScript(program) : zshScript(program));
    });
}
