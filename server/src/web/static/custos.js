/* Custos pages: one plain script, no dependencies, no build step.
 *
 * Everywhere: <time datetime> shown in local time; forms marked data-once are sent once; the
 * user form warns about (and refuses) two exclusive roles.
 * Guard console (#guard): live alerts over EventSource (/api/v1/alerts/stream), re-read from
 * /api/v1/alerts on hello and resync; a repeating WebAudio tone while an unauthorized removal
 * is open; acknowledge and resolve through the JSON API with the x-csrf-token header; readers
 * and passages polled from /guard/status.json. DOM is built with createElement/textContent
 * only, mirroring the server's markup (web/guard.rs).
 * Scan desk (#scan-input): the input keeps the focus, so a keyboard-wedge scanner's next
 * label lands there even after a click elsewhere.
 * Sign-out request (#signout-form): the browser's offset from UTC at the due time is sent
 * with the local due time (tz_offset, minutes, as Date.getTimezoneOffset()).
 */
(function () {
  'use strict';

  var LANG = document.documentElement.lang || 'zh-CN';

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute('content') : '';
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value !== null && value !== undefined && value !== false) {
        node.setAttribute(name, value === true ? '' : String(value));
      }
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) { return; }
      node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    });
    return node;
  }

  /* The site's one date-time format per language, in the site's zone (<body data-tz>),
   * the same as the server's (web/datetime.rs): zh "2026-03-01 16:05:09",
   * en "1 Mar 2026 16:05:09". Times the server wrote (data-zone="site") are left alone. */
  var SITE_TZ = (document.body && document.body.getAttribute('data-tz')) || undefined;
  var MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

  function siteTime(date) {
    var parts = {};
    try {
      new Intl.DateTimeFormat('en-US', {
        timeZone: SITE_TZ, year: 'numeric', month: '2-digit', day: '2-digit',
        hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23'
      }).formatToParts(date).forEach(function (p) { parts[p.type] = p.value; });
    } catch (e) {
      return date.toISOString();
    }
    var hms = parts.hour + ':' + parts.minute + ':' + parts.second;
    if (LANG.indexOf('en') === 0) {
      return parseInt(parts.day, 10) + ' ' + MONTHS[parseInt(parts.month, 10) - 1] + ' ' + parts.year + ' ' + hms;
    }
    return parts.year + '-' + parts.month + '-' + parts.day + ' ' + hms;
  }

  function localTime(node) {
    if (node.getAttribute('data-zone') === 'site') { return; }
    var iso = node.getAttribute('datetime');
    var date = new Date(iso);
    if (!isNaN(date.getTime())) {
      node.textContent = siteTime(date);
      node.setAttribute('data-zone', 'site');
      node.title = iso;
    }
  }

  function timeEl(iso) {
    var node = el('time', { datetime: iso }, [iso]);
    localTime(node);
    return node;
  }

  function localizeTimes(root) {
    Array.prototype.forEach.call(root.querySelectorAll('time[datetime]'), localTime);
  }

  /* ---- Forms ---------------------------------------------------------------------- */

  function exclusiveConflict(form) {
    var ticked = form.querySelectorAll('input[data-exclusive]:checked').length;
    var message = document.getElementById('roles-conflict');
    if (message) { message.hidden = ticked < 2; }
    var fieldset = document.getElementById('user-roles');
    if (fieldset && ticked >= 2) { fieldset.setAttribute('aria-invalid', 'true'); }
    return ticked >= 2;
  }

  document.addEventListener('change', function (event) {
    var target = event.target;
    if (target && target.form && target.hasAttribute('data-exclusive')) {
      exclusiveConflict(target.form);
    }
  });

  document.addEventListener('submit', function (event) {
    var form = event.target;
    if (form.id === 'user-form' && exclusiveConflict(form)) {
      event.preventDefault();
      var first = form.querySelector('input[data-exclusive]:checked');
      if (first) { first.focus(); }
      return;
    }
    if (form.hasAttribute('data-once')) {
      if (form.getAttribute('data-sent') === 'true') {
        event.preventDefault();
        return;
      }
      form.setAttribute('data-sent', 'true');
      Array.prototype.forEach.call(form.querySelectorAll('button[type="submit"]'), function (b) {
        b.disabled = true;
      });
    }
  });

  /* ---- Scan desk and sign-out requests ---------------------------------------------- */

  function startDesk(input) {
    input.focus();
    /* A scanner types into whatever has the focus: bring a typed character back to the scan
     * field unless the user is typing into another field. */
    document.addEventListener('keydown', function (event) {
      var active = document.activeElement;
      if (active === input || event.ctrlKey || event.metaKey || event.altKey) { return; }
      var tag = active ? active.tagName : '';
      if (tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT') { return; }
      if (event.key && event.key.length === 1) { input.focus(); }
    });
  }

  function dueOffset(form) {
    var due = form.querySelector('input[name="due"]');
    var tz = form.querySelector('input[name="tz_offset"]');
    if (!due || !tz) { return; }
    var at = due.value ? new Date(due.value) : new Date();
    tz.value = String(isNaN(at.getTime()) ? new Date().getTimezoneOffset() : at.getTimezoneOffset());
  }

  document.addEventListener('submit', function (event) {
    if (event.target && event.target.id === 'signout-form') { dueOffset(event.target); }
  }, true);

  /* ---- Sign-out form: the issue rules checked while it is filled in ------------------ */

  function startSignoutCheck(form) {
    var box = document.getElementById('signout-check');
    if (!box) { return; }
    var texts = { ok: box.getAttribute('data-ok-text'), refused: box.getAttribute('data-refused-text') };
    var timer = null;
    var asked = 0;
    function show(state, children) {
      box.setAttribute('data-state', state);
      while (box.firstChild) { box.removeChild(box.firstChild); }
      children.forEach(function (c) { box.appendChild(c); });
    }
    function ask() {
      var params = new URLSearchParams();
      params.set('borrower', form.querySelector('#signout-borrower').value);
      params.set('carriers', form.querySelector('#signout-carriers').value);
      Array.prototype.forEach.call(form.querySelectorAll('input[name="carrier_id"]:checked'), function (c) {
        params.append('carrier_id', c.value);
      });
      if (params.get('borrower').trim() === '') { show('idle', []); return; }
      var mine = ++asked;
      fetch('/signouts/check.json?' + params.toString(), { credentials: 'same-origin', headers: { accept: 'application/json' } })
        .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
        .then(function (answer) {
          if (mine !== asked) { return; }
          if (answer.borrower_error) {
            show('unknown', [el('p', { 'class': 'check-borrower' }, [answer.borrower_error])]);
          } else if (answer.refusals.length === 0) {
            show('ok', [el('p', { 'class': 'check-ok' }, [texts.ok])]);
          } else {
            show('refused', [
              el('p', { 'class': 'check-refused' }, [texts.refused]),
              el('ul', { 'class': 'would-refuse' }, answer.refusals.map(function (r) {
                return el('li', { 'class': 'refusal', 'data-code': r.code }, [r.text]);
              }))
            ]);
          }
        })
        .catch(function () { show('idle', []); });
    }
    function later() {
      if (timer !== null) { window.clearTimeout(timer); }
      timer = window.setTimeout(ask, 250);
    }
    /* The due time proposed for the highest level ticked (the domain's default loan per
     * level, on the field), until the custodian types one. */
    var due = form.querySelector('#signout-due');
    function proposeDue() {
      if (!due || (due.value !== '' && due.getAttribute('data-proposed') !== 'true')) { return; }
      var rank = { C: 1, S: 2, TS: 3 };
      var top = null;
      Array.prototype.forEach.call(form.querySelectorAll('input[name="carrier_id"]:checked'), function (c) {
        var level = c.getAttribute('data-level');
        if (rank[level] && (top === null || rank[level] > rank[top])) { top = level; }
      });
      if (top === null) { return; }
      var hours = parseInt(due.getAttribute('data-default-hours-' + top.toLowerCase()), 10);
      if (!(hours > 0)) { return; }
      var at = new Date(Date.now() + hours * 3600 * 1000);
      var pad = function (n) { return (n < 10 ? '0' : '') + n; };
      due.value = at.getFullYear() + '-' + pad(at.getMonth() + 1) + '-' + pad(at.getDate()) +
        'T' + pad(at.getHours()) + ':' + pad(at.getMinutes());
      due.setAttribute('data-proposed', 'true');
    }
    if (due) {
      due.addEventListener('input', function () { due.setAttribute('data-proposed', 'false'); });
    }
    form.addEventListener('change', proposeDue);
    form.addEventListener('input', later);
    form.addEventListener('change', later);
    /* A badge reader types the tag and Enter: check, do not submit the half-filled form. */
    form.querySelector('#signout-borrower').addEventListener('keydown', function (event) {
      if (event.key === 'Enter') { event.preventDefault(); ask(); }
    });
    ask();
  }

  /* ---- Guard console -------------------------------------------------------------- */

  function startGuard(root) {
    var texts = JSON.parse(document.getElementById('custos-i18n').textContent);
    var labels = texts.labels;
    var banners = document.getElementById('banners');
    var list = document.getElementById('alert-list');
    var empty = document.getElementById('alert-empty');
    var live = document.getElementById('live-status');
    var soundButton = document.getElementById('sound-enable');
    var pollMs = parseInt(root.getAttribute('data-poll-ms'), 10) || 5000;
    var known = {};
    var audio = null;
    var alarmTimer = null;

    Array.prototype.forEach.call(root.querySelectorAll('[data-alert-id].alert-banner, [data-alert-id].alert-card'), function (node) {
      known[node.getAttribute('data-alert-id')] = true;
    });

    function signIn() {
      window.location.href = '/login?next=/guard';
    }

    function setLive(on) {
      live.setAttribute('data-live', on ? 'on' : 'off');
      live.textContent = on ? labels.live_on : labels.live_off;
    }

    /* Sound: browsers start audio only after a tap, hence the button. The console tries to
       start it on every load; a browser that blocks autoplay leaves the context suspended,
       and the button then says so ("tap to enable sound", data-blocked) until a tap. */
    function audioReady() {
      return audio !== null && audio.state === 'running';
    }

    function showSound() {
      var on = audioReady();
      var blocked = !on && audio !== null && audio.state === 'suspended';
      soundButton.setAttribute('data-on', on ? 'true' : 'false');
      soundButton.setAttribute('data-blocked', blocked ? 'true' : 'false');
      soundButton.textContent = on ? labels.sound_on
        : (blocked ? labels.sound_tap : labels.sound_enable);
    }

    function tone(freq, start, length) {
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.type = 'square';
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(0.25, start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + length);
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start(start);
      osc.stop(start + length + 0.05);
    }

    function siren() {
      if (!audioReady()) { return; }
      var now = audio.currentTime;
      tone(880, now, 0.35);
      tone(660, now + 0.4, 0.35);
    }

    function chime() {
      if (!audioReady()) { return; }
      tone(990, audio.currentTime, 0.2);
    }

    function updateAlarm() {
      var ringing = banners.querySelector('.alert-banner[data-state="open"]') !== null;
      if (ringing && alarmTimer === null) {
        siren();
        alarmTimer = window.setInterval(siren, 1200);
      } else if (!ringing && alarmTimer !== null) {
        window.clearInterval(alarmTimer);
        alarmTimer = null;
      }
    }

    function makeAudio() {
      var Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) { return; }
      audio = new Context();
      audio.onstatechange = showSound;
    }

    soundButton.addEventListener('click', function () {
      if (audio === null) { makeAudio(); }
      if (audio === null) { return; }
      audio.resume().then(function () {
        showSound();
        chime();
      });
    });
    makeAudio();
    if (audio !== null) { audio.resume().then(showSound, showSound); }
    showSound();

    /* Alerts. */
    function fact(field, label, children) {
      return el('div', { 'class': 'fact', 'data-field': field }, [
        el('dt', {}, [label]),
        el('dd', {}, children)
      ]);
    }

    function turnedBack(a) {
      return !!(a.detail && a.detail.turned_back === true);
    }

    function gateOf(a) {
      var d = a.detail || {};
      return typeof d.gate === 'string' ? d.gate : a.device_id;
    }

    function head(a, banner, expanded) {
      var line = el('span', { 'class': 'alert-line' }, []);
      if (a.carrier_control_no) {
        line.appendChild(el('span', { 'class': 'line-carrier' }, [a.carrier_control_no]));
        line.appendChild(document.createTextNode(' '));
      }
      if (gateOf(a)) {
        line.appendChild(el('span', { 'class': 'line-gate' }, [gateOf(a)]));
        line.appendChild(document.createTextNode(' '));
      }
      line.appendChild(el('span', { 'class': 'line-time' }, [timeEl(a.raised_at)]));
      return el('div', { 'class': 'alert-head' }, [
        banner ? el('strong', { 'class': 'banner-title' }, [turnedBack(a) ? labels.banner_turned_back : labels.banner]) : null,
        el('span', { 'class': 'alert-kind' }, [texts.kinds[a.kind] || a.kind]),
        el('span', { 'class': 'severity', 'data-severity': a.severity }, [texts.severities[a.severity] || a.severity]),
        el('span', { 'class': 'state', 'data-state': a.state }, [texts.states[a.state] || a.state]),
        line,
        el('button', { 'class': 'expand', type: 'button', 'data-alert-id': a.id, 'aria-expanded': expanded ? 'true' : 'false' },
          [expanded ? labels.hide_details : labels.show_details])
      ]);
    }

    function facts(a, banner) {
      var d = a.detail || {};
      var list = el('dl', { 'class': 'facts' });
      var gate = gateOf(a);
      if (gate) {
        var place = (texts.places || {})[gate];
        list.appendChild(fact('gate', banner ? labels.gate : labels.device, place ?
          [el('span', { 'class': 'device-id' }, [gate]), ' · ', el('span', { 'class': 'place' }, [place])] :
          [el('span', { 'class': 'device-id' }, [gate])]));
      }
      if (typeof d.direction === 'string') {
        list.appendChild(fact('direction', labels.direction, [
          el('span', { 'data-direction': d.direction }, [texts.directions[d.direction] || d.direction])
        ]));
      }
      if (banner) {
        var back = turnedBack(a);
        list.appendChild(fact('movement', labels.movement, [
          el('span', { 'data-movement': back ? 'turned_back' : 'left' }, [back ? labels.movement_turned_back : labels.movement_left])
        ]));
      }
      if (a.carrier_control_no) {
        var carrier = [el('span', { 'class': 'carrier-no' }, [a.carrier_control_no])];
        if (a.carrier_level) {
          carrier.push(' ');
          carrier.push(el('span', { 'class': 'level', 'data-level': a.carrier_level }, [texts.levels[a.carrier_level] || a.carrier_level]));
        }
        list.appendChild(fact('carrier', labels.carrier, carrier));
      }
      var holders = Array.isArray(d.badge_holders) ? d.badge_holders.filter(function (n) { return typeof n === 'string'; }) : [];
      if (holders.length > 0) {
        list.appendChild(fact('badge_holder', labels.badge_holder, [holders.join('、')]));
      }
      list.appendChild(fact('time', labels.time, [timeEl(a.raised_at)]));
      if (typeof d.resumed_at === 'string') {
        list.appendChild(fact('resumed', labels.resumed, [timeEl(d.resumed_at)]));
      }
      if (a.occurrences > 1) {
        list.appendChild(fact('occurrences', labels.occurrences, [String(a.occurrences)]));
      }
      return list;
    }

    function ackButton(a) {
      return el('button', { 'class': 'ack', type: 'button', 'data-alert-id': a.id }, [labels.ack]);
    }

    function outcomeChoice(a) {
      if (a.kind !== 'unauthorized_removal') { return null; }
      var select = el('select', { 'class': 'resolve-outcome', 'data-alert-id': a.id }, [
        el('option', { value: '' }, [labels.outcome_none])
      ]);
      (labels.outcomes || []).forEach(function (o) {
        select.appendChild(el('option', { value: o[0] }, [o[1]]));
      });
      return el('label', { 'class': 'outcome-label' }, [el('span', {}, [labels.outcome]), select]);
    }

    function actions(a) {
      return el('div', { 'class': 'alert-actions' }, [
        a.state === 'open' ? ackButton(a) : null,
        outcomeChoice(a),
        el('label', { 'class': 'resolve-label' }, [
          el('span', {}, [labels.note]),
          el('textarea', { 'class': 'resolve-note', 'data-alert-id': a.id, rows: '2', maxlength: '2000' })
        ]),
        el('button', { 'class': 'resolve', type: 'button', 'data-alert-id': a.id }, [labels.resolve]),
        el('p', { 'class': 'action-error', role: 'alert', hidden: true })
      ]);
    }

    function render(a) {
      var banner = a.kind === 'unauthorized_removal';
      return el('li', {
        'class': banner ? 'alert-banner' : 'alert-card',
        'data-alert-id': a.id,
        'data-kind': a.kind,
        'data-state': a.state,
        'data-severity': a.severity,
        'data-group': texts.groups[a.kind] || 'reminder',
        'data-turned-back': banner ? (turnedBack(a) ? 'true' : 'false') : null
      }, [head(a, banner, false), facts(a, banner), actions(a)]);
    }

    function find(id) {
      return root.querySelector('#banners > li[data-alert-id="' + id + '"], #alert-list > li[data-alert-id="' + id + '"]');
    }

    function containerFor(a) {
      return a.kind === 'unauthorized_removal' ? banners : list;
    }

    /* Update in place, keeping the note being typed and the focus: a focused button that
     * the update replaces or removes hands the focus to its successor in the same alert. */
    var focusAfter = null;
    function refresh(node, a) {
      var banner = a.kind === 'unauthorized_removal';
      var focused = document.activeElement;
      var hadFocus = focused && node.contains(focused) && focused.tagName === 'BUTTON' ? focused.className : null;
      var expanded = node.getAttribute('data-expanded') === 'true';
      node.setAttribute('data-state', a.state);
      node.setAttribute('data-severity', a.severity);
      if (banner) { node.setAttribute('data-turned-back', turnedBack(a) ? 'true' : 'false'); }
      node.replaceChild(head(a, banner, expanded), node.querySelector('.alert-head'));
      node.replaceChild(facts(a, banner), node.querySelector('.facts'));
      var ack = node.querySelector('button.ack');
      if (a.state !== 'open' && ack) { ack.parentNode.removeChild(ack); }
      if (a.state === 'open' && !ack) {
        var acts = node.querySelector('.alert-actions');
        acts.insertBefore(ackButton(a), acts.firstChild);
      }
      if (focusAfter === a.id) {
        focusAfter = null;
        if (!hadFocus) { hadFocus = 'expand'; }
      }
      if (hadFocus && !node.contains(document.activeElement)) {
        var next = node.querySelector('button.' + hadFocus.split(' ')[0]) || node.querySelector('button.expand');
        if (next && next.offsetParent !== null) { next.focus(); } else { node.querySelector('button.expand').focus(); }
      }
    }

    function numeric(id) { return parseInt(id, 10) || 0; }

    /* Insert newest first without moving existing nodes. */
    function insert(container, node, id) {
      var before = null;
      Array.prototype.some.call(container.children, function (child) {
        if (numeric(child.getAttribute('data-alert-id')) < numeric(id)) { before = child; return true; }
        return false;
      });
      container.insertBefore(node, before);
    }

    /* The sticky count of open alarms, per filter group too. */
    var count = document.getElementById('alarm-count');
    function updateCount() {
      var open = root.querySelectorAll('#banners > li[data-state="open"], #alert-list > li[data-state="open"]');
      count.setAttribute('data-open', String(open.length));
      count.querySelector('.count').textContent = String(open.length);
      var per = { all: open.length, gate: 0, reminder: 0, device: 0 };
      Array.prototype.forEach.call(open, function (n) {
        var g = n.getAttribute('data-group');
        if (per[g] !== undefined) { per[g] += 1; }
      });
      Array.prototype.forEach.call(root.querySelectorAll('.filter-count'), function (c) {
        var n = per[c.getAttribute('data-group')] || 0;
        c.textContent = n > 0 ? '(' + n + ')' : '';
      });
    }

    /* Every new alert flashes the count and the tab title until the guard touches the page. */
    var baseTitle = document.title;
    var flashTimer = null;
    var flashOn = false;
    function stopFlash() {
      if (flashTimer === null) { return; }
      window.clearInterval(flashTimer);
      flashTimer = null;
      document.title = baseTitle;
      count.setAttribute('data-flash', 'false');
      root.setAttribute('data-flashing', 'false');
    }
    function flash() {
      root.setAttribute('data-flashing', 'true');
      count.setAttribute('data-flash', 'true');
      if (flashTimer !== null) { return; }
      flashOn = false;
      var step = function () {
        flashOn = !flashOn;
        var n = count.getAttribute('data-open');
        document.title = flashOn ? '(' + n + ') ' + labels.new_alert + ' · ' + baseTitle : baseTitle;
      };
      step();
      flashTimer = window.setInterval(step, 800);
    }
    ['keydown', 'pointerdown'].forEach(function (type) {
      document.addEventListener(type, stopFlash, true);
    });

    /* Bring a new alarm into view unless the guard is typing somewhere (never steal focus or
     * scroll away from a note). */
    function reveal(node) {
      var active = document.activeElement;
      if (active && (active.tagName === 'TEXTAREA' || active.tagName === 'INPUT')) { return; }
      if (node.scrollIntoView) { node.scrollIntoView({ block: 'nearest' }); }
    }

    /* Filter by group; the alerts of other groups are hidden, never removed. */
    var filterBar = document.getElementById('alert-filter');
    filterBar.addEventListener('click', function (event) {
      var button = event.target.closest ? event.target.closest('button.filter') : null;
      if (!button) { return; }
      var g = button.getAttribute('data-group');
      root.setAttribute('data-filter', g);
      Array.prototype.forEach.call(filterBar.querySelectorAll('button.filter'), function (b) {
        b.setAttribute('aria-pressed', b === button ? 'true' : 'false');
      });
    });

    function settle() {
      empty.hidden = list.children.length + banners.children.length > 0;
      updateCount();
      updateAlarm();
    }

    function upsert(a, announce) {
      var node = find(a.id);
      if (a.state === 'resolved') {
        if (node) {
          var held = node.contains(document.activeElement) || focusAfter === a.id;
          node.parentNode.removeChild(node);
          if (held) { focusAfter = null; count.focus(); }
        }
      } else if (node) {
        refresh(node, a);
      } else {
        var fresh = render(a);
        insert(containerFor(a), fresh, a.id);
        if (announce && !known[a.id]) {
          if (a.kind !== 'unauthorized_removal') { chime(); }
          known[a.id] = true;
          settle();
          flash();
          if (a.state === 'open') { reveal(fresh); }
        }
      }
      known[a.id] = true;
      settle();
    }

    function getJson(url) {
      return fetch(url, { credentials: 'same-origin', headers: { accept: 'application/json' } })
        .then(function (response) {
          if (response.status === 401 || response.redirected) { signIn(); throw new Error('signed out'); }
          if (!response.ok) { throw new Error(String(response.status)); }
          return response.json();
        });
    }

    var reading = null;
    function reread() {
      if (reading) { return reading; }
      reading = Promise.all([
        getJson('/api/v1/alerts?state=open&limit=1000'),
        getJson('/api/v1/alerts?state=acknowledged&limit=1000')
      ]).then(function (lists) {
        var current = {};
        lists[0].concat(lists[1]).forEach(function (a) {
          current[a.id] = true;
          upsert(a, false);
        });
        Array.prototype.forEach.call(root.querySelectorAll('#banners > li[data-alert-id], #alert-list > li[data-alert-id]'), function (node) {
          if (!current[node.getAttribute('data-alert-id')]) {
            node.parentNode.removeChild(node);
          }
        });
        settle();
      }).catch(function () { setLive(false); }).then(function () { reading = null; });
      return reading;
    }

    var stream = null;
    function connect() {
      stream = new EventSource('/api/v1/alerts/stream');
      stream.addEventListener('hello', function () {
        setLive(true);
        reread();
      });
      stream.addEventListener('alert', function (event) {
        try {
          upsert(JSON.parse(event.data), true);
        } catch (e) {
          reread();
        }
      });
      stream.addEventListener('resync', function () { reread(); });
      stream.onerror = function () {
        setLive(false);
        if (stream.readyState === EventSource.CLOSED) {
          stream.close();
          window.setTimeout(connect, 5000);
        }
      };
    }

    /* Acknowledge and resolve. */
    function showError(node, message) {
      var box = node.querySelector('.action-error');
      if (box) {
        box.textContent = message;
        box.hidden = false;
      }
    }

    function post(url, body) {
      var headers = { accept: 'application/json', 'x-csrf-token': csrfToken() };
      if (body !== undefined) { headers['content-type'] = 'application/json'; }
      return fetch(url, {
        method: 'POST',
        credentials: 'same-origin',
        headers: headers,
        body: body === undefined ? undefined : JSON.stringify(body)
      }).then(function (response) {
        if (response.status === 401) { signIn(); throw new Error('signed out'); }
        return response.json().catch(function () { return {}; }).then(function (json) {
          if (!response.ok) { throw new Error(json.message || String(response.status)); }
          return json;
        });
      });
    }

    root.addEventListener('click', function (event) {
      var toggle = event.target.closest ? event.target.closest('button.expand') : null;
      if (toggle) {
        var item = find(toggle.getAttribute('data-alert-id'));
        var open = item.getAttribute('data-expanded') !== 'true';
        item.setAttribute('data-expanded', open ? 'true' : 'false');
        toggle.setAttribute('aria-expanded', open ? 'true' : 'false');
        toggle.textContent = open ? labels.hide_details : labels.show_details;
        return;
      }
      var button = event.target.closest ? event.target.closest('button.ack, button.resolve') : null;
      if (!button) { return; }
      var id = button.getAttribute('data-alert-id');
      var node = find(id);
      if (!node) { return; }
      var request;
      if (button.classList.contains('ack')) {
        request = post('/api/v1/alerts/' + encodeURIComponent(id) + '/ack');
      } else {
        var note = node.querySelector('textarea.resolve-note');
        var text = note ? note.value.trim() : '';
        if (text === '') {
          showError(node, labels.note_required);
          if (note) { note.focus(); }
          return;
        }
        /* The guard's outcome of a removal goes with the resolution (only when chosen). */
        var chosen = node.querySelector('select.resolve-outcome');
        var body = { note: text };
        if (chosen && chosen.value !== '') { body.outcome = chosen.value; }
        request = post('/api/v1/alerts/' + encodeURIComponent(id) + '/resolve', body);
      }
      /* Disabling the pressed button drops the focus: the update gives it back. */
      focusAfter = id;
      button.disabled = true;
      request.then(function (a) {
        upsert(a, false);
      }, function (error) {
        button.disabled = false;
        showError(node, labels.failed + error.message);
      });
    });

    /* Readers and passages. */
    function renderReader(r) {
      return el('li', {
        'class': 'reader ' + (r.ok ? 'reader-ok' : 'reader-down'),
        'data-device-id': r.device_id,
        'data-ok': r.ok ? 'true' : 'false',
        'data-state': r.state
      }, [
        el('span', { 'class': 'lamp', 'aria-hidden': 'true' }),
        el('span', { 'class': 'reader-name' }, r.place ? [r.device_id, ' · ', el('span', { 'class': 'place' }, [r.place])] : [r.device_id]),
        el('span', { 'class': 'reader-kind' }, [r.kind_label]),
        el('span', { 'class': 'reader-state' }, [r.state_label + (r.reader ? ' (' + r.reader + ')' : '')]),
        el('span', { 'class': 'reader-heartbeat' }, [
          labels.last_heartbeat + ': ',
          r.last_heartbeat ? timeEl(r.last_heartbeat) : labels.never
        ])
      ]);
    }

    function renderPassage(p) {
      return el('li', { 'class': 'passage', 'data-event-id': p.event_id }, [
        el('span', { 'class': 'passage-time' }, [p.at ? timeEl(p.at) : null]),
        el('span', { 'class': 'passage-gate' }, p.place ? [p.device_id, ' · ', el('span', { 'class': 'place' }, [p.place])] : [p.device_id]),
        p.direction ? el('span', { 'class': 'passage-direction', 'data-direction': p.direction }, [p.direction_label]) : null,
        el('span', { 'class': 'passage-carriers' }, p.carriers.map(function (c) {
          return el('span', { 'class': 'carrier-no', 'data-level': c.level }, [
            c.control_no + ' ',
            el('span', { 'class': 'level' }, [c.level_label])
          ]);
        })),
        p.badge_holders && p.badge_holders.length > 0 ?
          el('span', { 'class': 'passage-badges badge-holders' }, [labels.badge_holder + ' ' + p.badge_holders.join('、')]) :
          (p.badges > 0 ? el('span', { 'class': 'passage-badges' }, [labels.badges + ' ' + p.badges]) : null)
      ]);
    }

    function replaceChildren(container, nodes) {
      while (container.firstChild) { container.removeChild(container.firstChild); }
      nodes.forEach(function (node) { container.appendChild(node); });
    }

    function poll() {
      getJson('/guard/status.json').then(function (status) {
        replaceChildren(document.getElementById('reader-list'), status.readers.map(renderReader));
        replaceChildren(document.getElementById('passage-list'), status.passages.map(renderPassage));
        document.getElementById('passage-empty').hidden = status.passages.length > 0;
        document.getElementById('readers').removeAttribute('data-stale');
      }).catch(function () {
        document.getElementById('readers').setAttribute('data-stale', 'true');
      });
    }

    settle();
    connect();
    window.setInterval(poll, pollMs);
  }

  function start() {
    localizeTimes(document);
    var user = document.getElementById('user-form');
    if (user) { exclusiveConflict(user); }
    var guard = document.getElementById('guard');
    if (guard) { startGuard(guard); }
    var scan = document.getElementById('scan-input');
    if (scan) { startDesk(scan); }
    var signout = document.getElementById('signout-form');
    if (signout) { startSignoutCheck(signout); }
    var print = document.getElementById('label-print-now');
    if (print) { print.addEventListener('click', function () { window.print(); }); }
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
}());
