#!/usr/bin/env python3
"""Prints the longest functions under the given directories, in lines from the first line
of the signature to the closing brace (the tree is clang-formatted, so a body's closing
brace sits at the indentation of its signature). Usage: function-lengths.py [N] DIR..."""
import os, re, sys

KEYWORDS = re.compile(r'^\s*(if|for|while|switch|do|else|class|struct|enum|union|namespace|'
                      r'return|case|default|try|catch|template\s*<[^>]*>\s*(class|struct))\b')

def functions(path):
    lines = open(path, encoding='utf-8', errors='replace').read().split('\n')
    for i, line in enumerate(lines):
        if not line.endswith('{') or '(' not in ''.join(lines[max(0, i - 6):i + 1]):
            continue
        start = i
        while start > 0:
            prev = lines[start - 1].rstrip()
            if (not prev or prev.endswith((';', '{', '}', ':')) or prev.lstrip().startswith(('//', '#'))):
                break
            start -= 1
        indent = len(lines[start]) - len(lines[start].lstrip())
        head = ' '.join(l.strip() for l in lines[start:i + 1])
        if KEYWORDS.match(head) or '=' in head.split('(')[0] or ')' not in head:
            continue
        if re.search(r'\]\s*(\(.*\))?\s*(mutable\s*)?(->\s*[^{]+)?\{$', head):
            continue  # a lambda
        closing = ' ' * indent + '}'
        for j in range(i + 1, len(lines)):
            if lines[j] == closing or lines[j].startswith(closing + ' ') or lines[j] == closing + ';':
                name = re.sub(r'\s*\(.*', '', head).split()[-1] if head.split('(')[0].split() else head
                yield name, start + 1, j - start + 1
                break

def main():
    args = sys.argv[1:]
    n = int(args.pop(0)) if args and args[0].isdigit() else 15
    found = []
    for d in args:
        for root, _, names in os.walk(d):
            for f in names:
                if f.endswith(('.cc', '.h')):
                    p = os.path.join(root, f)
                    found += [(length, f'{p}:{line}', name) for name, line, length in functions(p)]
    found.sort(reverse=True)
    for length, where, name in found[:n]:
        print(f'{length:5d}  {name}  {where}')

main()
