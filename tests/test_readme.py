"""The README's and docs/RESULTS.md's commands work as pasted: the scripts, their flags, the
config files, every `--config.` key and every repository path they name exist."""
import ast
import functools
import importlib
import os
import pathlib
import re
import shlex
import subprocess
import sys
from typing import Iterator, Optional

import ml_collections

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = [ROOT / 'README.md', ROOT / 'docs' / 'RESULTS.md']
SHELL = ('', 'sh', 'bash', 'shell', 'console')
# Spans of inline code that are commands (the Results tables quote them that way).
COMMAND_START = re.compile(r'(python3?|pip|sbatch|launch/|tensorboard|tfds) ')
REPO_PATH = re.compile(r'(?<![\w/.])(?:configs|benchmarks|launch|tests|docs|freqprior)/[\w./{},-]*')


def _blocks(text: str) -> list[tuple[str, str]]:
  """(info string, body) of each fenced code block."""
  return re.findall(r'^```(\S*)\n(.*?)^```', text, re.M | re.S)


def _inline_code(text: str) -> list[str]:
  prose = re.sub(r'^```.*?^```', '', text, flags=re.M | re.S)
  return re.findall(r'`([^`\n]+)`', prose)


def _commands(text: str) -> Iterator[list[str]]:
  """Every command of the shell blocks and of the inline code that starts like one, as argv:
  continuation lines joined, comments dropped, split at && ; | and ||."""
  lines = []
  for info, body in _blocks(text):
    if info in SHELL:
      lines += body.replace('\\\n', ' ').splitlines()
  lines += [span for span in _inline_code(text) if COMMAND_START.match(span)]
  for line in lines:
    command = []
    for token in shlex.split(line, comments=True) + ['&&']:
      if token in ('&&', '||', ';', '|'):
        if command:
          yield command
        command = []
      else:
        command.append(token)


def _script(argv: list[str]) -> Optional[pathlib.Path]:
  """The repository script a `python ...` command runs (None: not ours, e.g. pytest)."""
  if not argv or not re.fullmatch(r'python3?', argv[0]) or len(argv) < 2:
    return None
  if argv[1] == '-m':
    path = ROOT / argv[2].replace('.', '/')
    if not argv[2].startswith('freqprior'):
      return None
    return path / '__main__.py' if path.is_dir() else path.with_suffix('.py')
  return ROOT / argv[1]


def _flag_args(argv: list[str]) -> list[tuple[str, Optional[str]]]:
  """(name, value or None) of each --flag; [--optional=N] brackets stripped."""
  flags = []
  for token in argv:
    token = token.strip('[]')
    if token.startswith('--'):
      name, _, value = token[2:].partition('=')
      flags.append((name, value if '=' in token else None))
  return flags


@functools.cache
def _static_flags(script: pathlib.Path) -> dict[str, Optional[tuple]]:
  """Flags the script itself defines (absl DEFINE_* or argparse add_argument): name -> the enum's
  values (None: any value). A boolean absl flag also answers to --noNAME."""
  found = {}
  for node in ast.walk(ast.parse(script.read_text())):
    if not isinstance(node, ast.Call):
      continue
    func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, 'id', '')
    literals = [a.value for a in node.args if isinstance(a, ast.Constant)]
    if func.startswith('DEFINE_') and literals and isinstance(literals[0], str):
      found[literals[0]] = None
      if func == 'DEFINE_enum' and len(node.args) > 2:
        try:
          found[literals[0]] = tuple(ast.literal_eval(node.args[2]))
        except ValueError:
          pass
      if func in ('DEFINE_bool', 'DEFINE_boolean'):
        found['no' + literals[0]] = None
    elif func == 'add_argument':
      found.update({s[2:]: None for s in literals if isinstance(s, str) and s.startswith('--')})
  return found


@functools.cache
def _help_flags(script: pathlib.Path) -> frozenset[str]:
  """Every flag the script's --helpfull (absl) or --help (argparse) lists, for the flags that
  imported modules or absl itself define. Only asked when a flag is not found statically."""
  absl = 'from absl import app' in script.read_text()
  relative = script.relative_to(ROOT)
  target = (['-m', '.'.join(relative.with_suffix('').parts)] if relative.parts[0] == 'freqprior'
            else [str(relative)])
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=str(ROOT))
  result = subprocess.run([sys.executable, *target, '--helpfull' if absl else '--help'],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
  names = set()
  for negatable, name in re.findall(r'--(\[no\])?([\w.-]+)', result.stdout + result.stderr):
    names.update([name, 'no' + name] if negatable else [name])  # absl lists --[no]name
  return frozenset(names)


@functools.cache
def _config(path: str) -> ml_collections.ConfigDict:
  module = importlib.import_module(str(pathlib.Path(path).with_suffix('')).replace('/', '.'))
  return module.get_config()


def _has_key(config: ml_collections.ConfigDict, dotted: str) -> bool:
  node = config
  for part in dotted.split('.'):
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      return False
    node = node[part]
  return True


def _shipped_configs() -> list[ml_collections.ConfigDict]:
  return [_config(f'configs/{p.name}') for p in sorted((ROOT / 'configs').glob('*.py'))
          if p.name not in ('__init__.py', 'common.py')]


def _command_problems(argv: list[str]) -> list[str]:
  problems = []
  script = _script(argv)
  if script is None:
    return problems
  where = ' '.join(argv)
  if not script.is_file():
    return [f'{where}: no script {script.relative_to(ROOT)}']
  flags = _flag_args(argv)
  config_file = dict(flags).get('config')
  if config_file is not None and not (ROOT / config_file).is_file():
    return [f'{where}: no config file {config_file}']
  defined = _static_flags(script)
  for name, value in flags:
    if name.startswith('config.'):
      if config_file is None:
        problems.append(f'{where}: --{name} without --config=')
      elif not _has_key(_config(config_file), name[len('config.'):]):
        problems.append(f'{where}: {config_file} has no key {name[len("config."):]}')
    elif name in defined:
      if defined[name] is not None and value is not None and value not in defined[name]:
        problems.append(f'{where}: --{name}={value} is not one of {defined[name]}')
    elif name not in _help_flags(script):
      problems.append(f'{where}: {script.relative_to(ROOT)} defines no flag --{name}')
  return problems


def test_ci_runs_the_readme_test_command():
  ci_command = [line for line in (ROOT / '.ci' / 'run').read_text().splitlines()
                if line.strip() and not line.startswith('#')][-1]
  readme_lines = [line for _, body in _blocks(DOCS[0].read_text()) for line in body.splitlines()]
  assert ci_command in readme_lines, f'.ci/run runs {ci_command!r}, which the README does not show'


def test_commands_run_existing_scripts_with_defined_flags_and_config_keys():
  problems, checked = [], 0
  for doc in DOCS:
    for argv in _commands(doc.read_text()):
      checked += _script(argv) is not None
      problems += [f'{doc.name}: {p}' for p in _command_problems(argv)]
  assert checked >= 10, f'only {checked} commands found: is the parser still reading the docs?'
  assert not problems, '\n'.join(problems)


def test_config_keys_named_in_prose_exist():
  """`config.model.prior_blocks`, `--config.eval.step=N`: in some shipped config."""
  configs, problems = _shipped_configs(), []
  for doc in DOCS:
    for span in _inline_code(doc.read_text()):
      match = re.fullmatch(r'(?:--)?config\.([\w.]+?)(?:=.*)?', span)
      if match and not span.endswith('.json') and not any(
          _has_key(c, match.group(1)) for c in configs):
        problems.append(f'{doc.name}: no shipped config has {match.group(1)}')
  assert not problems, '\n'.join(problems)


def test_paths_and_pictures_exist():
  problems = []
  for doc in DOCS:
    text = doc.read_text()
    for path in REPO_PATH.findall(text):
      path = path.rstrip('.,')
      if '<' in path or '*' in path:
        continue
      head, braces, tail = re.match(r'([^{]*)(?:\{([^}]*)\})?(.*)', path).groups()
      for option in braces.split(',') if braces else ['']:
        if not (ROOT / f'{head}{option}{tail}').exists():
          problems.append(f'{doc.name}: no {head}{option}{tail}')
    for target in re.findall(r'\]\(([^)\s]+)\)', text):
      if '://' not in target and not (doc.parent / target).exists():
        problems.append(f'{doc.name}: link to missing {target}')
  assert not problems, '\n'.join(problems)


def test_python_names_exist():
  """The python blocks' imports and attributes, and every freqprior.x.y named in the prose."""
  names = set()
  for doc in DOCS:
    text = doc.read_text()
    names.update(re.findall(r'\bfreqprior(?:\.\w+)+', ' '.join(_inline_code(text))))
    for info, body in _blocks(text):
      if info != 'python':
        continue
      tree = ast.parse(body)
      aliases = {}
      for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
          for alias in node.names:
            aliases[alias.asname or alias.name] = f'{node.module}.{alias.name}'
            names.add(f'{node.module}.{alias.name}')
      for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id in aliases):
          names.add(f'{aliases[node.value.id]}.{node.attr}')
  problems = []
  for name in sorted(names):
    parts = name.split('.')
    for split in range(len(parts), 0, -1):
      try:
        obj = importlib.import_module('.'.join(parts[:split]))
        break
      except ImportError:
        continue
    else:
      problems.append(f'cannot import {name}')
      continue
    for attr in parts[split:]:
      if not hasattr(obj, attr):
        problems.append(f'{name}: no {attr}')
        break
      obj = getattr(obj, attr)
  assert len(names) >= 3, f'only {sorted(names)} found'
  assert not problems, '\n'.join(problems)
