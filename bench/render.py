"""Benchmark: rendering posts through the engine vs plain Jinja2, same templates, same run.

80 template sources (8 channels x 10 languages) of realistic length, each importing
macros from ``templates/partials/common.j2``, are rendered with a realistic context:

* **engine**: ``engine.posts.render.render_text`` (sandbox, StrictUndefined, time, memory and
  output limits, compiled-template cache) and then ``engine.posts.channels.count``: what
  ``engine.posts.versions.render`` does for each post, minus the context build, the identifier
  scan and the store. Reported as "render only" and "render + count"; the scan is
  shown separately for information.
* **plain**: a ``jinja2.Environment`` with the same loader and whitespace options, the
  80 templates compiled once beforehand, ``template.render(**ctx)``.
* for information, **sandbox only**: the engine's compiled sandboxed templates called
  with ``template.render(**ctx)`` directly, without ``render_text``'s limits and checks,
  to show which part of the difference is the sandbox and which the limits.

Rounds alternate plain / engine so both see the same machine load; throughput is
the median over rounds, and each ratio is the median of the per-round ratios.
Target: engine >= 0.5 x plain Jinja2.

    python3 bench/render.py [--rounds R] [--passes P] [--no-cache]

``--no-cache`` makes the engine compile every template on every render (as it did
before the compiled-template cache), to show what the cache is worth.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.posts import render as engine_render  # noqa: E402
from engine.posts.channels import CHANNELS, count  # noqa: E402
from engine.posts.render import render_text, scan  # noqa: E402
from engine.posts.sandbox import templates_dirs  # noqa: E402
from status import machine  # noqa: E402  (bench/status.py's machine line)

CHANNEL_NAMES = ("x", "bluesky", "mastodon", "facebook", "linkedin", "sms", "web", "chat")

# Per language: an apology, what happens next, and "contact us" (a few languages the
# partials translate, the rest fall back to their English wording, as in real playbooks).
PHRASES = {
    "en": ("We're sorry to hear about your experience and we want to make this right.",
           "We are reviewing what happened with the care team and will share what we find.",
           "Please contact our patient relations team"),
    "es": ("Lamentamos mucho su experiencia y queremos solucionarlo.",
           "Estamos revisando lo ocurrido con el equipo asistencial y compartiremos lo que averigüemos.",
           "Contacte con nuestro equipo de atención al paciente"),
    "fr": ("Nous sommes désolés de votre expérience et nous voulons y remédier.",
           "Nous examinons ce qui s'est passé avec l'équipe soignante et partagerons nos conclusions.",
           "Veuillez contacter notre service des relations avec les patients"),
    "de": ("Es tut uns leid, von Ihrer Erfahrung zu hören, und wir möchten das in Ordnung bringen.",
           "Wir prüfen gemeinsam mit dem Behandlungsteam, was geschehen ist, und informieren Sie.",
           "Bitte wenden Sie sich an unser Patientenbüro"),
    "it": ("Ci dispiace molto per la sua esperienza e vogliamo rimediare.",
           "Stiamo verificando l'accaduto con l'équipe di cura e condivideremo ciò che emergerà.",
           "Contatti il nostro ufficio relazioni con il pubblico"),
    "pt": ("Lamentamos a sua experiência e queremos resolver a situação.",
           "Estamos a analisar o que aconteceu com a equipa clínica e partilharemos as conclusões.",
           "Contacte a nossa equipa de apoio ao doente"),
    "nl": ("Het spijt ons dat u dit zo heeft ervaren en we willen het goedmaken.",
           "We onderzoeken met het zorgteam wat er is gebeurd en delen wat we vinden.",
           "Neem contact op met onze patiëntenservice"),
    "tr": ("Yaşadığınız deneyim için üzgünüz ve durumu düzeltmek istiyoruz.",
           "Bakım ekibiyle birlikte neler olduğunu inceliyoruz ve bulgularımızı paylaşacağız.",
           "Lütfen hasta ilişkileri ekibimizle iletişime geçin"),
    "pl": ("Przykro nam z powodu Pani/Pana doświadczeń i chcemy to naprawić.",
           "Wyjaśniamy z zespołem opieki, co się wydarzyło, i podzielimy się ustaleniami.",
           "Prosimy o kontakt z działem obsługi pacjentów"),
    "ja": ("この度はご不快な思いをおかけし、誠に申し訳ございません。",
           "医療チームとともに経緯を確認しており、結果をお知らせいたします。",
           "患者相談窓口までご連絡ください"),
}

IMPORT = '{% from "partials/common.j2" import signature, privacy_notice, hashtags %}\n'


def sources() -> dict[tuple[str, str], str]:
    """The 80 template sources, keyed by (channel, language)."""
    out = {}
    for lang, (sorry, review, contact) in PHRASES.items():
        notice = f'{{{{ privacy_notice("{lang}") }}}}'
        sign = f'{{{{ signature(hospital_name, "{lang}") }}}}'
        out["x", lang] = IMPORT + f"{sorry} {notice} {contact}: {{{{ contact_url }}}}"
        out["bluesky", lang] = IMPORT + f"{sorry} {notice} {contact}: {{{{ contact_url }}}}"
        out["mastodon", lang] = IMPORT + (
            f"{sorry} {review} {notice}\n{contact}: {{{{ contact_url }}}}\n"
            "{{ hashtags(['StMarys', 'PatientCare']) }}")
        out["facebook", lang] = IMPORT + (
            f"{sorry} {{{{ hospital_name }}}}.\n\n{review} {review}\n\n{notice}\n"
            f"{contact}: {{{{ contact_url }}}}\n{sign}")
        out["linkedin", lang] = IMPORT + (
            f"{{{{ hospital_name }}}}: {sorry}\n\n{review}\n\n"
            "{% for step in steps %}- {{ step }}\n{% endfor %}\n"
            f"{review} {notice}\n\n{contact}: {{{{ contact_url }}}}\n{sign}\n"
            "{{ hashtags(['Healthcare', 'PatientSafety', 'StMarys']) }}")
        out["sms", lang] = f"{{{{ hospital_name }}}}: {sorry} {contact}: {{{{ contact_url }}}}"
        out["web", lang] = IMPORT + (
            f"<article lang=\"{lang}\">\n<h1>{{{{ incident.title }}}}</h1>\n"
            f"<p>{sorry}</p>\n<p>{review}</p>\n<ul>\n"
            "{% for step in steps %}  <li>{{ step }}</li>\n{% endfor %}</ul>\n"
            f"<p>{notice}</p>\n<p>{contact}: <a href=\"{{{{ contact_url }}}}\">{{{{ contact_url }}}}</a></p>\n"
            "<p><small>{{ incident.id }} &middot; {{ incident.started_at }}</small></p>\n"
            f"<footer>{sign}</footer>\n</article>")
        out["chat", lang] = (
            "{{ incident.id }} ({{ incident.severity }}) in {{ incident.stage }}: "
            f"{{{{ incident.title }}}}. Lead: {{{{ roles.incident_lead }}}}; spokesperson: "
            f"{{{{ roles.spokesperson }}}}. {review} Source: {{{{ complaint_url }}}}")
    return out


CONTEXT = {
    "hospital_name": "St Mary's Hospital",
    "contact_url": "https://example-hospital.org/feedback",
    "complaint_url": "https://x.com/patient/status/1234567890123456789",
    "complaint_channel": "x",
    "steps": ["We have spoken with the patient directly.",
              "The emergency department is reviewing its triage times.",
              "Compliance is checking what may be said in public."],
    "incident": {"id": "INC-20260314-001", "title": "Complaint about ER wait times",
                 "severity": "critical", "stage": "acknowledge",
                 "started_at": "2026-03-14T09:00:00.000Z", "drill": False},
    "roles": {"incident_lead": "alice", "spokesperson": "bob", "social_media": "carol"},
}


def plain_pass(compiled, passes: int) -> tuple[float, int]:
    n, t = 0, time.perf_counter()
    for _ in range(passes):
        for template in compiled:
            template.render(**CONTEXT)
            n += 1
    return time.perf_counter() - t, n


def engine_pass(items, passes: int, *, measure: bool, scan_too: bool = False) -> tuple[float, int]:
    n, t = 0, time.perf_counter()
    for _ in range(passes):
        for ch, lang, source, html in items:
            text = render_text(source, CONTEXT, html=html, where=f"bench/{ch}/{lang}")
            if measure:
                count(ch, text)
            if scan_too and CHANNELS[ch].public:
                scan(text)
            n += 1
    return time.perf_counter() - t, n


def count_pass(texts, passes: int) -> tuple[float, int]:
    n, t = 0, time.perf_counter()
    for _ in range(passes):
        for ch, text in texts:
            count(ch, text)
            n += 1
    return time.perf_counter() - t, n



def main() -> None:
    import os

    import jinja2

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--passes", type=int, default=10, help="passes over the 80 templates per round")
    parser.add_argument("--no-cache", action="store_true", help="compile on every render (the old engine)")
    args = parser.parse_args()

    if args.no_cache:
        from engine.posts.sandbox import environment

        engine_render._compiled = lambda source, html: environment(html=html).from_string(source)

    srcs = sources()
    assert len(srcs) == 80
    items = [(ch, lang, src, CHANNELS[ch].html) for (ch, lang), src in srcs.items()]
    envs = {html: jinja2.Environment(loader=jinja2.FileSystemLoader(templates_dirs()), autoescape=html,
                                     trim_blocks=True, lstrip_blocks=True) for html in (False, True)}
    compiled = [envs[html].from_string(src) for _, _, src, html in items]

    # Both sides must produce the same posts (the engine strips surrounding whitespace).
    texts = []
    for (ch, lang, src, html), template in zip(items, compiled):
        mine = render_text(src, CONTEXT, html=html, where=f"bench/{ch}/{lang}")
        assert mine == template.render(**CONTEXT).strip(), (ch, lang)
        texts.append((ch, mine))
    lengths = [len(t) for _, t in texts]
    print(f"{len(items)} templates ({len(CHANNEL_NAMES)} channels x {len(PHRASES)} languages), "
          f"posts of {min(lengths)}..{max(lengths)} characters (median {int(statistics.median(lengths))})")

    engine_pass(items, 1, measure=True, scan_too=True)  # warm-up: imports, caches
    plain_pass(compiled, 1)

    sandboxed = [engine_render._compiled(src, html) for _, _, src, html in items]
    rows: dict[str, list[float]] = {k: [] for k in ("plain", "sandbox", "render", "render+count",
                                                    "render+count+scan", "count")}
    ratios: dict[str, list[float]] = {k: [] for k in ("sandbox", "render", "render+count", "render+count+scan")}
    cpu0 = time.process_time()
    for _ in range(args.rounds):
        elapsed, n = plain_pass(compiled, args.passes)
        plain = n / elapsed
        rows["plain"].append(plain)
        if not args.no_cache:
            elapsed, n = plain_pass(sandboxed, args.passes)
            rows["sandbox"].append(n / elapsed)
            ratios["sandbox"].append((n / elapsed) / plain)
        for key, kwargs in (("render", {"measure": False}), ("render+count", {"measure": True}),
                            ("render+count+scan", {"measure": True, "scan_too": True})):
            elapsed, n = engine_pass(items, args.passes, **kwargs)
            rows[key].append(n / elapsed)
            ratios[key].append((n / elapsed) / plain)
        elapsed, n = count_pass(texts, args.passes)
        rows["count"].append(n / elapsed)
    cpu = time.process_time() - cpu0

    med = {k: statistics.median(v) for k, v in rows.items() if v}
    print(f"\nmachine: {machine()}, "
          f"jinja2 {jinja2.__version__}, load average {os.getloadavg()[0]:.2f}")
    print(f"{args.rounds} rounds x {args.passes} passes x 80 posts; compiled-template cache: "
          f"{'OFF' if args.no_cache else 'on'}; CPU time {cpu:.1f} s\n")
    print(f"{'path':<40} {'posts/s (median)':>17} {'vs plain':>9}")
    print(f"{'plain Jinja2 template.render':<40} {med['plain']:>17,.0f} {'1.00':>9}")
    if "sandbox" in med:
        print(f"{'(sandbox template.render, no limits)':<40} {med['sandbox']:>17,.0f} "
              f"{statistics.median(ratios['sandbox']):>9.2f}")
    for key, label in (("render", "engine render_text"), ("render+count", "engine render_text + count"),
                       ("render+count+scan", "engine render_text + count + scan")):
        print(f"{label:<40} {med[key]:>17,.0f} {statistics.median(ratios[key]):>9.2f}")
    print(f"{'channels.count alone':<40} {med['count']:>17,.0f}")
    per_channel = []
    for ch in CHANNEL_NAMES:
        mine = [text for name, text in texts if name == ch]
        elapsed, n = count_pass([(ch, text) for text in mine], max(1, args.passes // 2))
        per_channel.append(f"{ch} {elapsed / n * 1e6:,.1f}")
    print("count per post, microseconds: " + ", ".join(per_channel))
    for key in ("render", "render+count"):
        r = statistics.median(ratios[key])
        print(f"target {key}: engine/plain = {r:.2f} -> {'met' if r >= 0.5 else 'NOT met'} (>= 0.5)")


if __name__ == "__main__":
    main()
