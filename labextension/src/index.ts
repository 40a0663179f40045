/**
 * The Kernels panel: kernelctl in JupyterLab's left sidebar.
 *
 * Everything it shows comes from the server extension (kernelctl.lab, docs/lab.md),
 * whose answers are the CLI's own JSON documents: the panel computes nothing of its
 * own. Long actions are operations whose progress lines it streams; when one ends it
 * refreshes the server's kernelspecs, so the Launcher and the kernel picker change
 * without a page reload.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

type Json = any;

const POLL_MS = 10_000;

interface Reply {
  status: number;
  data: Json;
}

async function call(path: string, init: RequestInit = {}): Promise<Reply> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'kernelctl/api', path);
  const response = await ServerConnection.makeRequest(url, init, settings);
  let data: Json = null;
  try {
    data = await response.json();
  } catch {
    data = { message: `the server answered ${response.status}`, hint: '' };
  }
  return { status: response.status, data };
}

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string> = {},
  text = ''
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    node.setAttribute(key, value);
  }
  if (text) {
    node.textContent = text;
  }
  return node;
}

function button(label: string, action: () => void): HTMLButtonElement {
  const node = element('button', { type: 'button', class: 'jp-mod-styled kc-button' }, label);
  node.addEventListener('click', action);
  return node;
}

class KernelsPanel extends Widget {
  private list = element('ul', { class: 'kc-list', role: 'listbox', 'aria-label': 'Kernels' });
  private details = element('section', { class: 'kc-details', 'aria-label': 'Kernel details' });
  private form = element('form', { class: 'kc-form', 'aria-label': 'New kernel', hidden: '' });
  private progress = element('pre', { class: 'kc-progress', 'aria-label': 'Progress' });
  private message = element('div', { class: 'kc-message', role: 'alert' });
  private selected = '';
  private seen = ''; // the listing last shown, to notice changes made elsewhere
  private timer = 0;

  constructor(private app: JupyterFrontEnd) {
    super();
    this.id = 'kernelctl-kernels';
    this.addClass('kc-panel');
    this.title.label = 'Kernels';
    this.title.caption = 'kernelctl: create, inspect, fix and remove kernels';
    const bar = element('div', { class: 'kc-toolbar' });
    bar.append(button('New kernel', () => void this.openForm()),
      button('Refresh', () => void this.refresh()));
    this.node.append(bar, this.form, this.message, this.progress, this.list, this.details);
  }

  protected onAfterAttach(): void {
    void this.refresh();
    // Kernels made, fixed or removed in a terminal show up too: ask every 10 s while
    // the panel is open (the answer takes a few ms), and refresh the server's
    // kernelspecs when something changed, so the Launcher follows as well.
    this.timer = window.setInterval(() => void this.poll(), POLL_MS);
  }

  protected onBeforeDetach(): void {
    window.clearInterval(this.timer);
  }

  protected onAfterShow(): void {
    void this.poll();
  }

  private async poll(): Promise<void> {
    if (this.isHidden || this.node.dataset.busy) {
      return;
    }
    const { status, data } = await call('kernels');
    if (status === 200 && this.fingerprint(data) !== this.seen) {
      await this.app.serviceManager.kernelspecs.refreshSpecs();
      await this.refresh();
    }
  }

  private fingerprint(data: Json): string {
    // A Slurm kernel's jobs change state (pending, running, time left): shown too.
    return JSON.stringify(data.kernels.map((k: Json) => [k.name, k.display_name, k.status,
      (k.slurm?.runs || []).map((run: Json) => run.summary)]));
  }

  async refresh(): Promise<void> {
    const { status, data } = await call('kernels');
    if (status !== 200) {
      this.say(data);
      return;
    }
    this.seen = this.fingerprint(data);
    this.list.replaceChildren(...data.kernels.map((kernel: Json) => this.row(kernel)));
    if (this.selected) {
      await this.inspect(this.selected);
    }
  }

  private row(kernel: Json): HTMLLIElement {
    const item = element('li', {
      class: 'kc-kernel', role: 'option', tabindex: '0', 'data-name': kernel.name,
      'aria-selected': String(kernel.name === this.selected)
    });
    const base = kernel.base ? kernel.base.label || kernel.base.name : '-';
    item.append(
      element('span', { class: 'kc-display-name' }, kernel.display_name),
      element('span', { class: 'kc-name' }, kernel.name),
      element('span', { class: 'kc-base' }, base),
      element('span', { class: `kc-badge kc-status-${kernel.status}`, 'aria-label': 'status' },
        kernel.status)
    );
    for (const run of kernel.slurm?.runs || []) {
      item.append(element('span', { class: 'kc-slurm-run', 'aria-label': 'Slurm job' },
        run.summary));
    }
    const choose = () => void this.inspect(kernel.name);
    item.addEventListener('click', choose);
    item.addEventListener('keydown', event => {
      if (event.key === 'Enter' || event.key === ' ') {
        choose();
      }
    });
    return item;
  }

  async inspect(name: string): Promise<void> {
    this.selected = name;
    for (const item of Array.from(this.list.children)) {
      item.setAttribute('aria-selected', String(item.getAttribute('data-name') === name));
    }
    const [shown, doctor] = await Promise.all([call(`kernels/${name}`), call('doctor')]);
    if (shown.status !== 200) {
      this.details.replaceChildren();
      this.selected = '';
      return;
    }
    const kernel = shown.data;
    const rows: [string, string][] = [
      ['Name', kernel.name], ['Display name', kernel.display_name],
      ['Status', kernel.status], ['Base', kernel.base ? kernel.base.label : '-'],
      ['Environment', kernel.venv || '-'], ['Kernelspec', kernel.resource_dir],
      ['Made by', kernel.managed ? 'kernelctl' : 'another tool']
    ];
    if (kernel.slurm) {
      rows.push(['Slurm', kernel.slurm.summary]);
      for (const run of kernel.slurm.runs) {
        rows.push(['Running', run.summary]);
      }
    }
    const table = element('dl', { class: 'kc-facts' });
    for (const [key, value] of rows) {
      table.append(element('dt', {}, key), element('dd', {}, value));
    }
    const findings = element('ul', { class: 'kc-findings', 'aria-label': 'Findings' });
    for (const problem of kernel.problems) {
      findings.append(element('li', { class: 'kc-problem' }, problem));
    }
    for (const check of (doctor.data.checks || []) as Json[]) {
      if (check.kernel === name && check.status !== 'ok') {
        const item = element('li', { class: `kc-check kc-check-${check.status}` },
          `${check.status.toUpperCase()} ${check.id}: ${check.message}`);
        if (check.hint) {
          item.append(element('div', { class: 'kc-hint' }, `Fix: ${check.hint}`));
        }
        findings.append(item);
      }
    }
    const actions = element('div', { class: 'kc-actions' });
    actions.append(
      button('Rebuild', () => void this.operate(`kernels/${name}/rebuild`, 'POST')),
      button('Fix', () => void this.operate(`kernels/${name}/fix`, 'POST')),
      button('Remove', () => void this.operate(`kernels/${name}`, 'DELETE')),
      button('Open terminal', () => void this.terminal(name))
    );
    this.details.replaceChildren(
      element('h3', {}, kernel.display_name), table, findings, actions);
  }

  private async openForm(): Promise<void> {
    // Base: a recipe name (those usable here first; the others say why not) or any
    // --base form the CLI takes (module:..., conda:..., python:...); empty: what fits.
    const recipes = await call('recipes');
    const base = element('input', {
      id: 'kc-base', name: 'base', type: 'text', list: 'kc-recipes',
      placeholder: 'what fits this session'
    });
    const choices = element('datalist', { id: 'kc-recipes' });
    const entries = (recipes.data.recipes || []).filter((r: Json) => r.valid) as Json[];
    entries.sort((a, b) => Number(b.usable) - Number(a.usable));
    for (const recipe of entries) {
      choices.append(element('option', {
        value: recipe.name,
        label: recipe.usable ? `${recipe.loads}` : `not usable here: ${recipe.why_not}`
      }));
    }
    const field = (id: string, label: string, input: HTMLElement) => {
      const wrapper = element('div', { class: 'kc-field' });
      wrapper.append(element('label', { for: id }, label), input);
      return wrapper;
    };
    const name = element('input', { id: 'kc-name', name: 'name', type: 'text' });
    const packages = element('input', {
      id: 'kc-packages', name: 'packages', type: 'text', placeholder: 'numpy scipy>=1.13'
    });
    const display = element('input', { id: 'kc-display-name', name: 'display_name', type: 'text' });
    const create = element('button', { type: 'submit', class: 'jp-mod-styled kc-button' },
      'Create');
    this.form.replaceChildren(
      field('kc-name', 'Name', name), field('kc-base', 'Base', base), choices,
      field('kc-packages', 'Packages', packages), field('kc-display-name', 'Display name', display),
      create, button('Cancel', () => this.form.setAttribute('hidden', '')));
    this.form.onsubmit = event => {
      event.preventDefault();
      const body = {
        name: name.value.trim() || undefined,
        base: base.value.trim() || undefined,
        display_name: display.value.trim() || undefined,
        packages: packages.value.split(/[\s,]+/).filter(p => p)
      };
      void this.operate('kernels', 'POST', body).then(done => {
        if (done) {
          this.form.setAttribute('hidden', '');
        }
      });
    };
    this.form.removeAttribute('hidden');
    name.focus();
  }

  /** Start an operation, stream its progress; true when it ended well. While one
   * runs, the panel node carries data-busy (tests and styles use it). */
  private async operate(path: string, method: string, body?: Json): Promise<boolean> {
    if (this.node.dataset.busy) {
      return false; // one operation at a time from this panel
    }
    this.node.dataset.busy = '1';
    try {
      return await this.follow(path, method, body);
    } finally {
      delete this.node.dataset.busy;
    }
  }

  private async follow(path: string, method: string, body?: Json): Promise<boolean> {
    this.message.replaceChildren();
    this.progress.textContent = '';
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
    }
    const started = await call(path, init);
    if (started.status !== 202) {
      this.say(started.data);
      return false;
    }
    for (;;) {
      const { data } = await call(`operations/${started.data.operation}`);
      this.progress.textContent = (data.progress || []).join('\n');
      if (data.state !== 'running') {
        await this.app.serviceManager.kernelspecs.refreshSpecs();
        if (data.state === 'failed') {
          this.say(data.error);
        } else if (data.kind === 'remove') {
          this.selected = '';
          this.details.replaceChildren();
        } else if (data.result && data.result.name) {
          this.selected = data.result.name;
        }
        await this.refresh();
        return data.state === 'done';
      }
      await new Promise(resolve => setTimeout(resolve, 500));
    }
  }

  private say(error: Json): void {
    this.message.replaceChildren(
      element('div', { class: 'kc-error' }, `kernelctl: error: ${error.message}`));
    if (error.hint) {
      this.message.append(element('div', { class: 'kc-hint' }, `hint: ${error.hint}`));
    }
  }

  private async terminal(name: string): Promise<void> {
    const { status, data } = await call(`kernels/${name}/shell`);
    if (status !== 200) {
      this.say(data);
      return;
    }
    const widget: Json = await this.app.commands.execute('terminal:create-new');
    const session = widget.content.session;
    const send = () => session.send({ type: 'stdin', content: [data.command + '\r'] });
    if (session.connectionStatus === 'connected') {
      send();
    } else {
      session.connectionStatusChanged.connect((_: Json, state: string) => {
        if (state === 'connected') {
          send();
        }
      });
    }
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'kernelctl-lab:panel',
  description: 'The Kernels panel of kernelctl.',
  autoStart: true,
  optional: [ILayoutRestorer],
  activate: (app: JupyterFrontEnd, restorer: ILayoutRestorer | null) => {
    const panel = new KernelsPanel(app);
    app.shell.add(panel, 'left', { rank: 300 });
    if (restorer) {
      restorer.add(panel, panel.id);
    }
  }
};

export default plugin;
