// The README's quick start as a user reads it: its token and its curl calls (continuation
// lines joined, comments dropped), each as the HTTP request curl would send. Used by the quick
// start's test and its benchmark, so that both follow the README word for word.

export interface Curl {
  method: string;
  headers: Record<string, string>;
  body: string | undefined;
  url: URL;
  line: string;
}

/** The quick start's shell block: its token and its curl calls, continuation lines joined. */
export function quickStart(readme: string): { token: string; calls: Curl[] } {
  const at = readme.indexOf('FLOWPIN_TOKEN=');
  const block = readme.slice(readme.lastIndexOf('```sh', at), readme.indexOf('```\n', at));
  const token = /FLOWPIN_TOKEN=(\S+)/.exec(block)?.[1] ?? '';
  const lines = block
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => l.startsWith('curl '));
  const calls = lines.map((line) => {
    const words = [...line.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3] ?? '');
    const c: Curl = { method: 'GET', headers: {}, body: undefined, url: new URL('http://localhost/'), line };
    for (let i = 1; i < words.length; i++) {
      const w = words[i] as string;
      if (w === '-X') c.method = words[++i] as string;
      else if (w === '-H') {
        const h = words[++i] as string;
        c.headers[h.slice(0, h.indexOf(':')).trim().toLowerCase()] = h.slice(h.indexOf(':') + 1).trim();
      } else if (w === '-d') {
        c.body = words[++i];
        if (c.method === 'GET') c.method = 'POST';
      } else if (!w.startsWith('-') && w !== '|' && /^(https?:\/\/)?[\w.-]+:\d+\//.test(w))
        c.url = new URL(w.startsWith('http') ? w : `http://${w}`);
      else if (w === '|') break;
    }
    return c;
  });
  return { token, calls };
}
