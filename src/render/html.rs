//! The HTML report of one incident: a single self-contained file (no external resources) with a
//! space-time diagram — a lane per node, a mark per step at its (clock-corrected) time, arrows
//! for causal links — beside the step list, with zoom, pan and filters in the page.
//!
//! Log text is hostile input: the data travels as JSON inside a `<script type="application/json">`
//! element with `<`, `>`, `&` and the JavaScript line separators escaped, and the page builds its
//! DOM with `textContent` only.

use serde::Serialize;

use crate::incident::skew::{correction_ms, Skew};
use crate::incident::Incident;

/// A causal link between two steps (indices into the incident's steps).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Link {
    /// The cause.
    pub from: usize,
    /// The effect.
    pub to: usize,
    /// `election`, `sync`, `reconnect`, `expiry`, `failover`.
    pub kind: &'static str,
}

/// Causal links between an incident's steps, from what each step is:
///
/// - `election`: a server's LOOKING → the new leader's LEADING (its vote is one of those that
///   elected it); the new leader's LEADING → each follower's FOLLOWING;
/// - `sync`: the new leader's LEADING → each follower's synchronisation (DIFF/SNAP/TRUNC);
/// - `reconnect`: the quorum forming → each client (re)connecting or moving its session;
/// - `expiry`: the leader expiring a session → the committed closeSession → the client learning
///   it lost its session;
/// - `failover`: the committed closeSession (or the quorum forming) → a service's primary change.
pub fn links(inc: &Incident) -> Vec<Link> {
    let st = &inc.steps;
    let mut out = Vec::new();
    let is = |i: usize, k: &str| st[i].kind == k;
    let leader_node = inc.record().new_leader.map(|l| format!("zk{l}"));
    let on_leader = |i: usize| {
        leader_node.as_deref() == Some(st[i].node.as_str()) || st[i].summary.contains("LEADING")
    };
    let leading = (0..st.len()).find(|&i| {
        (is(i, "election.took") || is(i, "election.leading")) && st[i].summary.contains("LEADING")
    });
    let quorum = (0..st.len()).find(|&i| is(i, "quorum.formed")).or(leading);
    if let Some(l) = leading {
        for i in 0..st.len() {
            if is(i, "election.looking") && !on_leader(i) && st[i].at <= st[l].at {
                out.push(Link {
                    from: i,
                    to: l,
                    kind: "election",
                });
            }
            if (is(i, "election.took") || is(i, "election.following"))
                && st[i].summary.contains("FOLLOWING")
            {
                out.push(Link {
                    from: l,
                    to: i,
                    kind: "election",
                });
            }
            if st[i].kind.starts_with("sync.") && st[i].node != st[l].node {
                out.push(Link {
                    from: l,
                    to: i,
                    kind: "sync",
                });
            }
        }
    }
    if let Some(q) = quorum {
        for i in 0..st.len() {
            if is(i, "client.connected") && st[i].at >= st[q].at {
                out.push(Link {
                    from: q,
                    to: i,
                    kind: "reconnect",
                });
            }
        }
    }
    let closes: Vec<usize> = (0..st.len())
        .filter(|&i| is(i, "txn.closeSession"))
        .collect();
    for &c in &closes {
        for i in 0..st.len() {
            if is(i, "session.expired") && st[i].at <= st[c].at {
                out.push(Link {
                    from: i,
                    to: c,
                    kind: "expiry",
                });
            }
            if is(i, "client.session_expired") && st[i].at >= st[c].at {
                out.push(Link {
                    from: c,
                    to: i,
                    kind: "expiry",
                });
            }
        }
    }
    for i in 0..st.len() {
        if is(i, "service.role") {
            let cause = closes
                .iter()
                .copied()
                .rfind(|&c| st[c].at <= st[i].at)
                .or(quorum.filter(|&q| st[q].at <= st[i].at));
            if let Some(c) = cause {
                out.push(Link {
                    from: c,
                    to: i,
                    kind: "failover",
                });
            }
        }
    }
    out.sort_by_key(|l| (l.from, l.to));
    out.dedup();
    out
}

#[derive(Serialize)]
struct StepOut<'a> {
    ts: &'a str,
    /// ns since the epoch, local clock
    at: i64,
    /// ns since the epoch, corrected for the node's proven skew
    corrected: i64,
    correction_ms: Option<f64>,
    node: &'a str,
    kind: &'a str,
    summary: &'a str,
    evidence: &'a str,
}

/// A line of a node's log, as the report shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Sign {
    /// When (RFC 3339 UTC).
    pub ts: String,
    /// When, ns since the Unix epoch (the node's clock).
    pub at: i64,
    /// Its kind.
    pub kind: String,
    /// Its first line.
    pub summary: String,
    /// `file:line`.
    pub evidence: String,
}

/// A node that went silent across the incident's start (a server killed with `kill -9` writes
/// nothing): its last line before, and its next line (None: none yet).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Silence {
    /// The node.
    pub node: String,
    /// Its last sign of life before the incident.
    pub last: Sign,
    /// The line it came back with, if it has.
    pub back: Option<Sign>,
}

#[derive(Serialize)]
struct Data<'a> {
    incident: &'a Incident,
    steps: Vec<StepOut<'a>>,
    lanes: Vec<String>,
    links: Vec<Link>,
    skews: &'a [Skew],
    /// Each step's column in the logical (causal) order.
    order: Vec<usize>,
    silences: &'a [Silence],
    /// The incident as a ShiViz log (offered as a download).
    shiviz: String,
    id: &'a str,
}

/// JSON safe to embed in a `<script>` element.
fn script_json(v: &impl Serialize) -> String {
    let s = serde_json::to_string(v).unwrap_or_else(|_| "null".into());
    let mut out = String::with_capacity(s.len() + 64);
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// HTML-escapes text for element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Lanes: ZooKeeper servers first (by number), then the other nodes by name; a silent node
/// has one too.
fn lanes(inc: &Incident, silences: &[Silence]) -> Vec<String> {
    let mut v: Vec<String> = inc
        .steps
        .iter()
        .map(|s| s.node.clone())
        .chain(silences.iter().map(|s| s.node.clone()))
        .collect();
    v.sort_by_key(|n| {
        let num = n.strip_prefix("zk").and_then(|d| d.parse::<u64>().ok());
        (num.is_none(), num, n.clone())
    });
    v.dedup();
    v
}

/// Each step's column when drawn in causal order (causes first, then time).
fn logical_order(inc: &Incident, links: &[Link]) -> Vec<usize> {
    let n = inc.steps.len();
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
    for l in links {
        if l.from < n && l.to < n && l.from != l.to {
            preds[l.to].push(l.from);
        }
    }
    let times: Vec<i64> = inc.steps.iter().map(|s| s.at).collect();
    let mut col = vec![0; n];
    for (c, i) in super::shiviz::causal_order(&times, &preds)
        .into_iter()
        .enumerate()
    {
        col[i] = c;
    }
    col
}

/// Renders the report; `silences` are the nodes that went quiet across its start.
pub fn render(inc: &Incident, skews: &[Skew], silences: &[Silence]) -> String {
    let steps: Vec<StepOut> = inc
        .steps
        .iter()
        .map(|s| {
            let c = correction_ms(skews, &s.node);
            StepOut {
                ts: &s.ts,
                at: s.at,
                corrected: s.at - c.map_or(0, |ms| (ms * 1e6) as i64),
                correction_ms: c,
                node: &s.node,
                kind: &s.kind,
                summary: &s.summary,
                evidence: &s.evidence,
            }
        })
        .collect();
    let links = links(inc);
    let data = Data {
        incident: inc,
        steps,
        lanes: lanes(inc, silences),
        order: logical_order(inc, &links),
        links,
        skews,
        silences,
        shiviz: super::shiviz::render(inc),
        id: &inc.id,
    };
    let mut html = String::with_capacity(64 * 1024);
    html.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    html.push_str(&format!(
        "<title>{} — zklens incident</title>\n<style>{}</style>\n</head>\n<body>\n",
        esc(&inc.id),
        CSS
    ));
    html.push_str(&format!(
        "<div id=\"report\" data-rendered=\"no\" data-errors=\"0\">\n<header><h1>{}</h1><p class=\"sub\">{} · {} → {}</p><dl id=\"facts\"></dl></header>\n",
        esc(&inc.id),
        esc(inc.kind().as_str()),
        esc(&inc.started_at),
        esc(&inc.ended_at)
    ));
    html.push_str(BODY);
    html.push_str("</div>\n<script type=\"application/json\" id=\"data\">");
    html.push_str(&script_json(&data));
    html.push_str("</script>\n<script>\n");
    html.push_str(JS);
    html.push_str("\n</script>\n</body>\n</html>\n");
    html
}

const CSS: &str = r#"
:root{--bg:#fff;--fg:#1b1f24;--mute:#667085;--line:#d0d5dd;--hl:#fff4c2;
--election:#7a3cff;--sync:#0a7ea4;--session:#d97706;--txn:#b42318;--service:#027a48;--other:#475467}
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
header{padding:12px 16px;border-bottom:1px solid var(--line)}h1{font-size:18px;margin:0}
.sub{margin:2px 0 8px;color:var(--mute)}dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:0}
dt{color:var(--mute)}dd{margin:0;font-family:ui-monospace,Menlo,monospace;font-size:13px}
#controls{display:flex;flex-wrap:wrap;gap:8px;align-items:center;padding:8px 16px;border-bottom:1px solid var(--line)}
#controls input[type=search]{width:220px;padding:3px 6px}#controls button{padding:2px 8px}
#nodes label{margin-right:8px;white-space:nowrap}
main{display:grid;grid-template-columns:minmax(420px,3fr) minmax(360px,2fr);height:calc(100vh - 190px);min-height:420px}
#diagram{overflow:hidden;border-right:1px solid var(--line);position:relative;cursor:grab}
#diagram svg{width:100%;height:100%;display:block;user-select:none}
#steps{overflow:auto}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:2px 6px;border-bottom:1px solid #eef0f3;vertical-align:top;font-size:13px}
th{position:sticky;top:0;background:#f9fafb;font-weight:600}
td.t{font-family:ui-monospace,Menlo,monospace;font-size:12px;white-space:nowrap}
td.ev{font-family:ui-monospace,Menlo,monospace;font-size:11px;color:var(--mute);white-space:nowrap}
tr.sel td{background:var(--hl)}tr.hidden{display:none}tr{cursor:pointer}
.lane-label{font-size:12px;fill:var(--fg);font-weight:600}.lane{stroke:#eaecf0}
.axis text{font-size:11px;fill:var(--mute)}.axis line{stroke:#eaecf0}
.mark{stroke:#fff;stroke-width:1.5;cursor:pointer}.mark.sel{stroke:#000;stroke-width:3}
.link{fill:none;stroke-width:1.4;opacity:.75}.link.dim,.mark.dim{opacity:.12}
.legend span{display:inline-block;margin-right:10px;font-size:12px}.legend i{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:4px;vertical-align:-1px}
.note{color:var(--mute);font-size:12px}.kind{color:var(--mute);font-size:11px;margin-left:6px}
.silence{stroke:#98a2b3;stroke-width:2;stroke-dasharray:5 4}.life{fill:#fff;stroke:#475467;stroke-width:2}
.silence-label{font-size:11px;fill:var(--mute)}#controls button.on{background:#e0e7ff}
"#;

const BODY: &str = r#"<div id="controls">
<input type="search" id="filter" placeholder="filter kind or text…" aria-label="filter steps">
<button id="zin" title="zoom in">+</button><button id="zout" title="zoom out">−</button><button id="zreset" title="show everything">reset</button>
<button id="logical" title="one column per step, causes before effects (as ShiViz draws it)">logical order</button>
<button id="shiviz" title="the incident as a ShiViz log (vector clocks): paste it into ShiViz, bestchai.bitbucket.io/shiviz">ShiViz log</button>
<span id="nodes"></span>
<span class="legend" id="legend"></span>
<span class="note" id="skewnote"></span>
</div>
<main><div id="diagram"><svg id="svg" role="img" aria-label="space-time diagram"></svg></div>
<div id="steps"><table><thead><tr><th>time (UTC)</th><th>node</th><th>what happened</th><th>evidence</th></tr></thead><tbody id="rows"></tbody></table></div></main>
"#;

const JS: &str = r#"
(function(){
'use strict';
var root=document.getElementById('report');
var errors=0;
function fail(){errors++;root.setAttribute('data-errors',String(errors));}
window.addEventListener('error',fail);
window.addEventListener('unhandledrejection',fail);
var D=JSON.parse(document.getElementById('data').textContent);
var inc=D.incident, steps=D.steps, lanes=D.lanes, links=D.links, order=D.order||[], silences=D.silences||[];
var logical=false;
var NS='http://www.w3.org/2000/svg';
function el(tag,attrs,text){var e=document.createElement(tag);for(var k in attrs||{})e.setAttribute(k,attrs[k]);if(text!=null)e.textContent=String(text);return e;}
function sv(tag,attrs){var e=document.createElementNS(NS,tag);for(var k in attrs||{})e.setAttribute(k,attrs[k]);return e;}
function family(k){if(/^(election|peer|follower|leader|quorum|learner)/.test(k))return'election';if(/^sync/.test(k))return'sync';if(/^txn/.test(k))return'txn';if(/^service/.test(k))return'service';if(/^(session|client)/.test(k))return'session';return'other';}
var COLORS={election:'var(--election)',sync:'var(--sync)',session:'var(--session)',txn:'var(--txn)',service:'var(--service)',other:'var(--other)'};
// Facts
var facts=document.getElementById('facts');
function fact(k,v){if(v==null||v===''||(Array.isArray(v)&&!v.length))return;facts.appendChild(el('dt',{},k));facts.appendChild(el('dd',{},Array.isArray(v)?v.join(', '):v));}
if(inc.old_leader!=null||inc.new_leader!=null)fact('leader','zk'+(inc.old_leader==null?'?':inc.old_leader)+' (epoch '+(inc.old_epoch==null?'?':inc.old_epoch)+') → zk'+(inc.new_leader==null?'?':inc.new_leader)+' (epoch '+(inc.new_epoch==null?'?':inc.new_epoch)+')');
var em=Object.keys(inc.election_ms||{}).map(function(n){return n+' '+inc.election_ms[n]+' ms';});fact('election',em);
var sy=Object.keys(inc.sync||{}).map(function(n){return n+' '+inc.sync[n];});fact('sync',sy);
if(inc.unavailable_ms!=null)fact('unavailable',inc.unavailable_ms+' ms');
if(inc.server)fact('server',inc.server);
fact('sessions expired',inc.sessions_expired);fact('ephemerals lost',inc.ephemerals_lost);
fact('service failovers',(inc.service_failovers||[]).map(function(f){var r=f.service+': '+(f.from||'?')+' → '+f.to+' at '+f.at;if(f.source==='record'){r+=' (record '+f.recipe+': '+(f.ended||'').replace('_',' ')+' at zxid '+f.deleted_zxid+', takeover '+f.takeover_zxid+(f.gap_ms!=null?'; no primary that knew it for '+f.gap_ms+' ms':'')+')';}else{r+=' (its own log line)';}return r;}));
fact('sessions moved',(inc.sessions_moved||[]).map(function(m){return m.session+' ('+m.client+') '+m.from+' → '+m.to;}));
fact('unconfirmed',inc.unconfirmed);
fact('warnings',inc.warnings);
var corr=steps.filter(function(s){return s.correction_ms!=null;});
if(corr.length){var seen={};var parts=[];corr.forEach(function(s){if(!seen[s.node]){seen[s.node]=1;parts.push(s.node+' '+(s.correction_ms>0?'−':'+')+Math.abs(s.correction_ms).toFixed(0)+' ms');}});document.getElementById('skewnote').textContent='times corrected for proven clock skew: '+parts.join(', ');}
// Legend and node filters
var legend=document.getElementById('legend');
Object.keys(COLORS).forEach(function(f){var s=el('span');var i=el('i');i.style.background=COLORS[f];s.appendChild(i);s.appendChild(document.createTextNode(f));legend.appendChild(s);});
var shown={};lanes.forEach(function(n){shown[n]=true;});
var nodesBox=document.getElementById('nodes');
lanes.forEach(function(n){var l=el('label');var c=el('input',{type:'checkbox'});c.checked=true;c.addEventListener('change',function(){shown[n]=c.checked;apply();});l.appendChild(c);l.appendChild(document.createTextNode(' '+n));nodesBox.appendChild(l);});
// Step list
var rows=document.getElementById('rows');var trs=[];
function fmt(ns){var d=new Date(Math.floor(ns/1e6));return d.toISOString().slice(11,23);}
steps.forEach(function(s,i){var tr=el('tr',{'data-i':String(i)});
var t=el('td',{class:'t'},fmt(s.corrected));if(s.correction_ms!=null){t.title='local '+s.ts+' (corrected by '+s.correction_ms.toFixed(1)+' ms)';t.appendChild(el('div',{class:'note'},'local '+fmt(s.at)));}
tr.appendChild(t);tr.appendChild(el('td',{},s.node));var w=el('td');w.appendChild(document.createTextNode(s.summary));w.appendChild(el('span',{class:'kind'},s.kind));tr.appendChild(w);var evc=el('td',{class:'ev',title:s.evidence},s.evidence.replace(/^.*\//,''));tr.appendChild(evc);
tr.addEventListener('click',function(){select(i,false);});rows.appendChild(tr);trs.push(tr);});
// Diagram
var svg=document.getElementById('svg');var box=document.getElementById('diagram');
var t0=Infinity,t1=-Infinity;steps.forEach(function(s){t0=Math.min(t0,s.corrected);t1=Math.max(t1,s.corrected);});
silences.forEach(function(q){if(q.last&&q.last.at)t0=Math.min(t0,q.last.at);});
if(!isFinite(t0)){t0=0;t1=1;}var pad=Math.max((t1-t0)*0.05,5e7);var full=[t0-pad,t1+pad];var view=full.slice();
var LEFT=90,TOP=28,LANE=46;
var defs=sv('defs');['election','sync','reconnect','expiry','failover'].forEach(function(k){var m=sv('marker',{id:'arrow-'+k,viewBox:'0 0 10 10',refX:'9',refY:'5',markerWidth:'7',markerHeight:'7',orient:'auto-start-reverse'});m.appendChild(sv('path',{d:'M0,0 L10,5 L0,10 z',fill:linkColor(k)}));defs.appendChild(m);});
function linkColor(k){return{election:'#7a3cff',sync:'#0a7ea4',reconnect:'#d97706',expiry:'#b42318',failover:'#027a48'}[k]||'#475467';}
var marks=[],paths=[],sel=-1;
function W(){return Math.max(box.clientWidth,400);}
function X(t){return LEFT+(t-view[0])/(view[1]-view[0])*(W()-LEFT-20);}
function LH(){var h=(box.clientHeight||0)-TOP-24;return lanes.length?Math.max(LANE,h/lanes.length):LANE;}
function Y(node){return TOP+lanes.indexOf(node)*LH()+LH()/2;}
function XS(i){return logical?LEFT+(order[i]+0.5)/Math.max(steps.length,1)*(W()-LEFT-20):X(steps[i].corrected);}
function draw(){while(svg.firstChild)svg.removeChild(svg.firstChild);svg.appendChild(defs);
var h=TOP+lanes.length*LH()+10;svg.setAttribute('viewBox','0 0 '+W()+' '+Math.max(h,box.clientHeight||h));
var ax=sv('g',{class:'axis'});if(logical){var every=Math.max(1,Math.ceil(steps.length/12));for(var c=0;c<steps.length;c+=every){var xc=LEFT+(c+0.5)/steps.length*(W()-LEFT-20);ax.appendChild(sv('line',{x1:xc,x2:xc,y1:TOP-6,y2:h}));var tc=sv('text',{x:xc,y:14,'text-anchor':'middle'});tc.textContent='#'+(c+1);ax.appendChild(tc);}}else{var ticks=6;for(var k=0;k<=ticks;k++){var t=view[0]+(view[1]-view[0])*k/ticks;var x=X(t);ax.appendChild(sv('line',{x1:x,x2:x,y1:TOP-6,y2:h}));var tx=sv('text',{x:x,y:14,'text-anchor':'middle'});tx.textContent=fmt(t);ax.appendChild(tx);}}svg.appendChild(ax);
lanes.forEach(function(n){var y=Y(n);var g=sv('g',{class:'lane-g','data-node':n});g.appendChild(sv('line',{class:'lane',x1:LEFT,x2:W()-10,y1:y,y2:y}));var lt=sv('text',{class:'lane-label',x:8,y:y+4});lt.textContent=n;g.appendChild(lt);if(!shown[n])g.setAttribute('opacity','0.25');svg.appendChild(g);});
if(!logical)silences.forEach(function(q){var y=Y(q.node);var x1=Math.max(LEFT,X(q.last.at));var x2=q.back?Math.min(W()-10,X(q.back.at)):W()-10;if(x2>x1){var ln=sv('line',{class:'silence',x1:x1,x2:x2,y1:y,y2:y});var lt2=sv('title');lt2.textContent=q.node+' silent from '+fmt(q.last.at)+(q.back?' until '+fmt(q.back.at)+' ('+((q.back.at-q.last.at)/1e9).toFixed(1)+' s)':' (no line since)');ln.appendChild(lt2);svg.appendChild(ln);var lb=sv('text',{class:'silence-label',x:Math.min(x1+6,W()-120),y:y-8});lb.textContent='silent'+(q.back?' '+((q.back.at-q.last.at)/1e9).toFixed(1)+' s':' since');svg.appendChild(lb);}
var lc=sv('circle',{class:'life',cx:X(q.last.at),cy:y,r:5});var lti=sv('title');lti.textContent='last sign of life '+fmt(q.last.at)+': '+q.last.summary+' ('+q.last.evidence+')';lc.appendChild(lti);svg.appendChild(lc);
if(q.back){var bc=sv('circle',{class:'life',cx:X(q.back.at),cy:y,r:5});var bti=sv('title');bti.textContent='back '+fmt(q.back.at)+': '+q.back.summary+' ('+q.back.evidence+')';bc.appendChild(bti);svg.appendChild(bc);}});
paths=links.map(function(l){var a=steps[l.from],b=steps[l.to];var x1=XS(l.from),y1=Y(a.node),x2=XS(l.to),y2=Y(b.node);var mx=(x1+x2)/2,my=(y1+y2)/2-(y1===y2?18:0);
var p=sv('path',{class:'link','data-kind':l.kind,d:'M'+x1+','+y1+' Q'+mx+','+my+' '+x2+','+y2,stroke:linkColor(l.kind),'marker-end':'url(#arrow-'+l.kind+')'});var ti=sv('title');ti.textContent=l.kind+': '+a.summary+' → '+b.summary;p.appendChild(ti);svg.appendChild(p);return p;});
marks=steps.map(function(s,i){var c=sv('circle',{class:'mark','data-i':String(i),cx:XS(i),cy:Y(s.node),r:6,fill:COLORS[family(s.kind)]});var ti=sv('title');ti.textContent=fmt(s.corrected)+' '+s.node+': '+s.summary;c.appendChild(ti);c.addEventListener('click',function(ev){ev.stopPropagation();select(i,true);});svg.appendChild(c);return c;});
apply();root.setAttribute('data-lanes',String(lanes.length));root.setAttribute('data-silent',String(silences.length));root.setAttribute('data-logical',logical?'1':'0');root.setAttribute('data-marks',String(marks.length));root.setAttribute('data-links',String(paths.length));}
var filter=document.getElementById('filter');
function visible(i){var s=steps[i];var q=filter.value.trim().toLowerCase();return shown[s.node]&&(!q||s.kind.toLowerCase().indexOf(q)>=0||s.summary.toLowerCase().indexOf(q)>=0||s.node.toLowerCase().indexOf(q)>=0);}
function apply(){var n=0;steps.forEach(function(s,i){var v=visible(i);if(v)n++;trs[i].classList.toggle('hidden',!v);if(marks[i])marks[i].classList.toggle('dim',!v);});
links.forEach(function(l,j){if(paths[j])paths[j].classList.toggle('dim',!(visible(l.from)&&visible(l.to)));});root.setAttribute('data-visible',String(n));}
function select(i,scroll){if(sel>=0){trs[sel].classList.remove('sel');if(marks[sel])marks[sel].classList.remove('sel');}sel=i;trs[i].classList.add('sel');if(marks[i])marks[i].classList.add('sel');if(scroll&&trs[i].scrollIntoView)trs[i].scrollIntoView({block:'nearest'});root.setAttribute('data-selected',String(i));}
filter.addEventListener('input',apply);
function zoom(f,center){var c=center==null?(view[0]+view[1])/2:center;var w=(view[1]-view[0])*f;if(w<1e6)w=1e6;view=[c-(c-view[0])*f,c-(c-view[0])*f+w];draw();}
document.getElementById('zin').addEventListener('click',function(){zoom(0.5);});
document.getElementById('zout').addEventListener('click',function(){zoom(2);});
document.getElementById('zreset').addEventListener('click',function(){view=full.slice();draw();});
var lbtn=document.getElementById('logical');function setLogical(on){logical=on;lbtn.classList.toggle('on',on);draw();}
lbtn.addEventListener('click',function(){setLogical(!logical);});
document.getElementById('shiviz').addEventListener('click',function(){var a=document.createElement('a');a.href=URL.createObjectURL(new Blob([D.shiviz],{type:'text/plain'}));a.download=D.id+'.shiviz.log';document.body.appendChild(a);a.click();setTimeout(function(){URL.revokeObjectURL(a.href);a.remove();},0);});
box.addEventListener('wheel',function(ev){ev.preventDefault();var r=box.getBoundingClientRect();var x=ev.clientX-r.left;var t=view[0]+(x-LEFT)/(W()-LEFT-20)*(view[1]-view[0]);zoom(ev.deltaY<0?0.8:1.25,t);},{passive:false});
var drag=null;box.addEventListener('mousedown',function(ev){drag={x:ev.clientX,v:view.slice()};box.style.cursor='grabbing';});
window.addEventListener('mouseup',function(){drag=null;box.style.cursor='';});
window.addEventListener('mousemove',function(ev){if(!drag)return;var dt=(ev.clientX-drag.x)/(W()-LEFT-20)*(drag.v[1]-drag.v[0]);view=[drag.v[0]-dt,drag.v[1]-dt];draw();});
window.addEventListener('resize',draw);
draw();
// A link can open the report filtered, zoomed, with a step selected, in logical order:
// #filter=zk1&select=3&zoom=in&view=logical
(location.hash||'').replace(/^#/,'').split('&').forEach(function(kv){var p=kv.split('=');var k=p[0],v=decodeURIComponent(p[1]||'');
if(k==='filter'){filter.value=v;apply();}else if(k==='view'&&v==='logical'){setLogical(true);}else if(k==='select'&&/^[0-9]+$/.test(v)&&+v<steps.length){select(+v,true);}else if(k==='zoom'){zoom(v==='in'?0.5:2);}});
root.setAttribute('data-view',String(Math.round((view[1]-view[0])/1e6)));
root.setAttribute('data-rendered','ok');
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_cannot_escape_the_data_block() {
        let j = script_json(&vec![
            "</script><script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "a\u{2028}b & c",
        ]);
        assert!(!j.contains('<') && !j.contains('>') && !j.contains('&'));
        assert!(!j.contains('\u{2028}'));
        let back: Vec<String> = serde_json::from_str(&j).expect("still JSON");
        assert_eq!(back[0], "</script><script>alert(1)</script>");
        assert_eq!(esc("<b a=\"1\">&'"), "&lt;b a=&quot;1&quot;&gt;&amp;&#39;");
    }
}
