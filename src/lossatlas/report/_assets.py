# ruff: noqa: E501  (the inline script keeps its own long lines)
"""The report page's inline style and scripts (hand-written, no dependency, no network).

``BOOT_JS`` runs first and records every uncaught error and ``console.error`` call into
``window.__lossatlasErrors`` (read by the self-test). ``PAGE_JS`` draws the runs table, its
filters and sorting, the overview plot and the per-run sections from the inlined JSON
(``<script id="lossatlas-data">``), and runs the self-test when the URL fragment is ``#selftest``.
"""

from __future__ import annotations

#: Label colours (matplotlib's tab10 values of the PNG figures' colours).
LABEL_COLORS = {"global_minimum": "#2ca02c", "minimum": "#bcbd22", "degenerate_minimum": "#17becf",
                "strict_saddle": "#d62728", "non_strict_saddle": "#ff7f0e", "undetermined": "#7f7f7f",
                "not_critical": "#000000", "error": "#e377c2"}

CSS = """
:root{--fg:#1f2328;--muted:#57606a;--line:#d0d7de;--bg2:#f6f8fa;--accent:#0969da;--bad:#b42318}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);margin:0;line-height:1.45}
nav{position:sticky;top:0;z-index:5;background:#fff;border-bottom:1px solid var(--line);padding:.5em 1.2em}
nav a{margin-left:1em;color:var(--accent);text-decoration:none;font-size:14px}
main{max-width:1180px;margin:auto;padding:0 1.2em 4em}
h1{font-size:26px;margin:.8em 0 .3em}h1 small{font-size:14px;color:var(--muted);font-weight:normal}
h2{font-size:20px;border-bottom:1px solid var(--line);padding-bottom:.2em;margin-top:1.6em}
h3{font-size:15px;margin:1.2em 0 .3em}
section p{max-width:900px}
code{font-size:12.5px;background:var(--bg2);padding:0 3px;border-radius:3px}
table{border-collapse:collapse;margin:.4em 0}
td,th{border:1px solid var(--line);padding:3px 7px;font-size:13px;text-align:left;vertical-align:top}
th{background:var(--bg2);font-weight:600}
table.runs td{white-space:nowrap}
table.runs td.num,table.runs th.num{text-align:right;font-variant-numeric:tabular-nums}
table.runs th{cursor:pointer;user-select:none;white-space:nowrap;position:sticky;top:0}
table.runs th.sorted-asc::after{content:" \\25B2";font-size:10px}
table.runs th.sorted-desc::after{content:" \\25BC";font-size:10px}
table.runs tr:hover td{background:#eef6ff}
table.runs tr.current td{background:#fff8c5}
.tablewrap{max-height:520px;overflow:auto;border:1px solid var(--line)}
.tablewrap table{margin:0}
#figures .figs{display:grid;grid-auto-flow:row dense;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:1em}
#figures figure.wide{grid-column:1/-1}
figure{margin:0;padding:.6em;border:1px solid var(--line);border-radius:6px;background:#fff;display:flex;flex-direction:column;justify-content:space-between}
figure img{max-width:100%;display:block;margin:auto}
figcaption,.caption{font-size:13px;color:var(--muted);max-width:900px;margin-top:.4em}
figcaption.nodata{color:var(--bad)}
a.png{font-size:11px;color:var(--muted);margin-left:.4em}
.bad{color:var(--bad)}
.filters{display:flex;gap:1em;flex-wrap:wrap;align-items:center;font-size:13px;margin:.4em 0}
.filters select,.filters input{font-size:13px;padding:2px 4px}
.dot{display:inline-block;width:9px;height:9px;border-radius:50%;margin-right:4px;vertical-align:middle}
.plot svg{font:11px system-ui,sans-serif;overflow:visible}
.plot .axis line,.plot .axis path{stroke:#888}
.plot .grid{stroke:#eee}
#tooltip{position:fixed;pointer-events:none;background:#1f2328;color:#fff;font-size:12px;padding:4px 7px;
 border-radius:4px;z-index:10;white-space:pre}
.run{border:2px solid var(--accent);border-radius:8px;padding:.3em 1em 1em;margin-top:1.2em}
.run h3{font-size:17px}
.run .grid2{display:flex;flex-wrap:wrap;gap:1em}
.run .panel{flex:1 1 480px;min-width:320px}
.run .fields{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:0 1.2em;font-size:12.5px;margin:.3em 0 1em}
.run .fields div{border-bottom:1px solid #eee;padding:2px 0;overflow-wrap:anywhere}
.run .fields span{color:var(--muted);margin-right:.5em}
.run pre{font-size:12px;background:var(--bg2);padding:.5em;overflow:auto}
.legend{font-size:12px;margin:.2em 0}.legend span{margin-right:1em;white-space:nowrap}
"""

BOOT_JS = """
window.__lossatlasErrors=[];
window.addEventListener('error',function(ev){window.__lossatlasErrors.push('error: '+(ev.message||ev.type));});
window.addEventListener('unhandledrejection',function(ev){window.__lossatlasErrors.push('rejection: '+ev.reason);});
(function(){var ce=console.error;console.error=function(){window.__lossatlasErrors.push('console.error: '+
Array.prototype.join.call(arguments,' '));return ce.apply(console,arguments);};})();
"""

PAGE_JS = r"""
(function(){
'use strict';
var D=JSON.parse(document.getElementById('lossatlas-data').textContent);
var RUNS=D.runs, COLS=D.columns, COLORS=D.labelColors, ARR=D.arrays;
var BYID={}; RUNS.forEach(function(r){BYID[r.run_id]=r;});
var NS='http://www.w3.org/2000/svg';
var state={sort:null,dir:1,width:'',label:'',status:'',text:'',teacher:''};
var TEACHERS=uniq(RUNS.filter(function(r){return r.teacher!=null;}).sort(function(a,b){return (a.teacher_index||0)-(b.teacher_index||0);}).map(function(r){return String(r.teacher);}));
var MULTI=TEACHERS.length>1;
function catOf(r){return MULTI?String(r.teacher)+' m='+r.width:String(r.width);}
function cmpCat(a,b){if(!MULTI)return cmpWidth(a,b);var i=a.lastIndexOf(' m='),j=b.lastIndexOf(' m=');
  var ta=TEACHERS.indexOf(a.slice(0,i)),tb=TEACHERS.indexOf(b.slice(0,j));return ta!==tb?ta-tb:cmpWidth(a.slice(i+3),b.slice(j+3));}

function el(tag,attrs,kids){var e=document.createElement(tag);for(var k in (attrs||{})){
  if(k==='text')e.textContent=attrs[k];else if(k==='html')e.innerHTML=attrs[k];else e.setAttribute(k,attrs[k]);}
  (kids||[]).forEach(function(c){if(c!=null)e.appendChild(typeof c==='string'?document.createTextNode(c):c);});return e;}
function sv(tag,attrs,parent){var e=document.createElementNS(NS,tag);for(var k in (attrs||{}))e.setAttribute(k,attrs[k]);
  if(parent)parent.appendChild(e);return e;}
function labelOf(r){return r.label!=null?String(r.label):(r.run_status&&r.run_status!=='ok'?'error':'—');}
function color(lab){return COLORS[lab]||'#555';}
function fmt(v,type){if(v===null||v===undefined)return '';
  if(type==='num'&&typeof v==='number'){if(Number.isInteger(v))return String(v);
    var a=Math.abs(v);return (a!==0&&(a<1e-3||a>=1e5))?v.toExponential(2):v.toPrecision(4).replace(/\.?0+$/,'');}
  if(typeof v==='boolean')return v?'yes':'no';return String(v);}
function fmtAny(v){if(typeof v==='number')return fmt(v,'num');return fmt(v,'str');}
function widthKey(w){var n=Number(w);return isNaN(n)?[1,String(w)]:[0,n];}
function cmpWidth(a,b){var x=widthKey(a),y=widthKey(b);if(x[0]!==y[0])return x[0]-y[0];return x[1]<y[1]?-1:x[1]>y[1]?1:0;}
function uniq(a){var s={},o=[];a.forEach(function(x){if(!(x in s)){s[x]=1;o.push(x);}});return o;}

// ------------------------------------------------------------ filters and table
function visible(r){
  if(state.teacher&&String(r.teacher)!==state.teacher)return false;
  if(state.width&&String(r.width)!==state.width)return false;
  if(state.label&&labelOf(r)!==state.label)return false;
  if(state.status&&String(r.run_status)!==state.status)return false;
  if(state.text&&String(r.run_id).indexOf(state.text)<0)return false;return true;}
function buildFilters(){
  var box=document.getElementById('run-filters');
  function sel(id,name,values,key){var s=el('select',{id:id});s.appendChild(el('option',{value:'',text:'all'}));
    values.forEach(function(v){s.appendChild(el('option',{value:v,text:v}));});
    s.addEventListener('change',function(){state[key]=s.value;refresh();});
    box.appendChild(el('label',{},[name+' ',s]));}
  if(MULTI)sel('filter-teacher','teacher',TEACHERS,'teacher');
  sel('filter-width','width',uniq(RUNS.map(function(r){return String(r.width);})).sort(cmpWidth),'width');
  sel('filter-label','label',uniq(RUNS.map(labelOf)).sort(),'label');
  var st=uniq(RUNS.map(function(r){return String(r.run_status);}));
  if(st.length>1)sel('filter-status','status',st.sort(),'status');
  var t=el('input',{id:'filter-text',type:'search',placeholder:'run id contains…',size:'16'});
  t.addEventListener('input',function(){state.text=t.value.trim();refresh();});
  box.appendChild(t);box.appendChild(el('span',{id:'runs-count'}));
  var lg=el('span',{class:'legend'});uniq(RUNS.map(labelOf)).forEach(function(l){
    lg.appendChild(el('span',{},[el('i',{class:'dot',style:'background:'+color(l)}),l]));});box.appendChild(lg);}
function buildTable(){
  var thead=document.querySelector('#runs-table thead'),tbody=document.querySelector('#runs-table tbody');
  var tr=el('tr');COLS.forEach(function(c){var th=el('th',{'data-key':c.key,class:c.type==='num'?'num':'',text:c.title});
    th.addEventListener('click',function(){sortBy(c.key);});tr.appendChild(th);});thead.appendChild(tr);
  RUNS.forEach(function(r){var row=el('tr',{'data-run':r.run_id,'data-label':labelOf(r),'data-width':String(r.width)});
    COLS.forEach(function(c){var td=el('td',{class:c.type==='num'?'num':''});
      if(c.key==='run_id')td.appendChild(el('a',{href:'#run-'+r.run_id,text:r.run_id}));
      else if(c.key==='label'){td.appendChild(el('i',{class:'dot',style:'background:'+color(labelOf(r))}));td.appendChild(document.createTextNode(labelOf(r)));}
      else td.textContent=fmt(r[c.key],c.type);
      row.appendChild(td);});tbody.appendChild(row);});}
function sortBy(key){
  if(state.sort===key)state.dir=-state.dir;else{state.sort=key;state.dir=1;}
  var col=COLS.filter(function(c){return c.key===key;})[0];
  var tbody=document.querySelector('#runs-table tbody');
  var rows=Array.prototype.slice.call(tbody.children);
  rows.sort(function(a,b){var x=BYID[a.dataset.run][key],y=BYID[b.dataset.run][key];
    if(x==null&&y==null)return 0;if(x==null)return 1;if(y==null)return -1;
    var c=(key==='width')?cmpWidth(x,y):(col&&col.type!=='str'&&typeof x!=='string')?(x-y):String(x).localeCompare(String(y));
    return c*state.dir;});
  rows.forEach(function(r){tbody.appendChild(r);});
  document.querySelectorAll('#runs-table th').forEach(function(th){th.classList.remove('sorted-asc','sorted-desc');
    if(th.dataset.key===key)th.classList.add(state.dir>0?'sorted-asc':'sorted-desc');});}
function refresh(){
  var n=0;document.querySelectorAll('#runs-table tbody tr').forEach(function(tr){var v=visible(BYID[tr.dataset.run]);
    tr.hidden=!v;if(v)n++;});
  document.getElementById('runs-count').textContent=n+' of '+RUNS.length+' runs';drawOverview();}

// ------------------------------------------------------------ small SVG plots
function niceTicks(lo,hi,n){if(!(hi>lo)){return [lo];}var span=hi-lo,step=Math.pow(10,Math.floor(Math.log10(span/n)));
  var err=n/span*step;if(err<=.15)step*=10;else if(err<=.35)step*=5;else if(err<=.75)step*=2;
  var t=[],v=Math.ceil(lo/step)*step;for(;v<=hi+1e-9*step;v+=step)t.push(+v.toPrecision(12));return t;}
function scale(kind,lin){ // returns [forward,inverse-free tick maker,label]
  if(kind==='log')return {f:function(v){return v>0?Math.log10(v):NaN;},ticks:function(lo,hi){var a=Math.ceil(lo),b=Math.floor(hi),o=[];
    var st=[1,2,3,4,5,10,20,50].filter(function(s){return (b-a)/s<=7;})[0]||100;for(var k=Math.ceil(a/st)*st;k<=b;k+=st)o.push(k);return o;},
    lab:function(k){return '1e'+k;}};
  if(kind==='symlog'){var c=lin||1e-8;return {f:function(v){return Math.sign(v)*Math.log10(1+Math.abs(v)/c);},
    ticks:function(lo,hi){var cand=[0],m=Math.ceil(Math.max(Math.abs(lo),Math.abs(hi)));for(var k=1;k<=m;k++){var u=Math.log10(1+Math.pow(10,k));cand.push(u,-u);}
      cand=cand.filter(function(u){return u>=lo&&u<=hi;}).sort(function(x,y){return x-y;});var st=Math.max(1,Math.ceil(cand.length/7));
      return cand.filter(function(u,i){return u===0||i%st===0;});},
    lab:function(u){if(u===0)return '0';var v=Math.sign(u)*c*(Math.pow(10,Math.abs(u))-1);return v.toExponential(0);}};}
  return {f:function(v){return v;},ticks:function(lo,hi){var t=niceTicks(lo,hi,6);return kind==='int'?t.filter(function(v){return Number.isInteger(v);}):t;},lab:function(v){return fmtAny(v);}};}
function plot(opts){ // opts: w,h,x:{kind},y:{kind,lin},series:[{x,y,color,mode,title,run}],xlabel,ylabel,cats
  var W=opts.w||480,H=opts.h||260,m={l:58,r:12,t:18,b:40},pw=W-m.l-m.r,ph=H-m.t-m.b;
  var X=opts.cats?null:scale(opts.x.kind),Y=scale(opts.y.kind,opts.y.lin);
  var xs=[],ys=[];opts.series.forEach(function(s){s.X=s.x.map(function(v){return opts.cats?v:X.f(v);});s.Y=s.y.map(function(v){return v==null?NaN:Y.f(v);});
    s.X.forEach(function(v,i){if(isFinite(v)&&isFinite(s.Y[i])){xs.push(v);ys.push(s.Y[i]);}});});
  var svg=sv('svg',{width:W,height:H,viewBox:'0 0 '+W+' '+H,class:opts.cls||''});
  if(!xs.length){sv('text',{x:W/2,y:H/2,'text-anchor':'middle'},svg).textContent=opts.empty||'no data';return svg;}
  var x0=opts.cats?-0.5:Math.min.apply(null,xs),x1=opts.cats?opts.cats.length-0.5:Math.max.apply(null,xs);
  var y0=Math.min.apply(null,ys),y1=Math.max.apply(null,ys);
  if(x1===x0){x0-=0.5;x1+=0.5;}if(y1===y0){y0-=0.5;y1+=0.5;}var pad=(y1-y0)*0.05;y0-=pad;y1+=pad;
  function px(v){return m.l+(v-x0)/(x1-x0)*pw;}function py(v){return m.t+ph-(v-y0)/(y1-y0)*ph;}
  var g=sv('g',{class:'axis'},svg);
  Y.ticks(y0,y1).forEach(function(t){if(t<y0||t>y1)return;sv('line',{x1:m.l,x2:m.l+pw,y1:py(t),y2:py(t),class:'grid'},g);
    var tx=sv('text',{x:m.l-5,y:py(t)+4,'text-anchor':'end'},g);tx.textContent=Y.lab(t);});
  if(opts.cats)opts.cats.forEach(function(c,i){var tx=sv('text',{x:px(i),y:m.t+ph+15,'text-anchor':'middle'},g);tx.textContent=c;});
  else X.ticks(x0,x1).forEach(function(t){if(t<x0||t>x1)return;sv('line',{y1:m.t,y2:m.t+ph,x1:px(t),x2:px(t),class:'grid'},g);
    var tx=sv('text',{x:px(t),y:m.t+ph+15,'text-anchor':'middle'},g);tx.textContent=X.lab(t);});
  sv('rect',{x:m.l,y:m.t,width:pw,height:ph,fill:'none',stroke:'#888'},svg);
  var xl=sv('text',{x:m.l+pw/2,y:H-6,'text-anchor':'middle'},svg);xl.textContent=opts.xlabel||'';
  var yl=sv('text',{x:12,y:m.t+ph/2,'text-anchor':'middle',transform:'rotate(-90 12 '+(m.t+ph/2)+')'},svg);yl.textContent=opts.ylabel||'';
  opts.series.forEach(function(s){
    if(s.mode==='line'){var d='';s.X.forEach(function(v,i){if(!isFinite(v)||!isFinite(s.Y[i]))return;d+=(d?'L':'M')+px(v).toFixed(1)+','+py(s.Y[i]).toFixed(1);});
      sv('path',{d:d,fill:'none',stroke:s.color,'stroke-width':1.5},svg);}
    else s.X.forEach(function(v,i){if(!isFinite(v)||!isFinite(s.Y[i]))return;var c=sv('circle',{cx:px(v),cy:py(s.Y[i]),r:s.r||3.5,fill:s.color,'fill-opacity':.8,stroke:'#fff','stroke-width':.5},svg);
      if(s.runs){c.setAttribute('data-run',s.runs[i]);c.setAttribute('class','pt');}});});
  return svg;}
function legend(items){var d=el('div',{class:'legend'});items.forEach(function(it){d.appendChild(el('span',{},[el('i',{class:'dot',style:'background:'+it[1]}),it[0]]));});return d;}

// ------------------------------------------------------------ overview (runs at a glance)
function drawOverview(){
  var box=document.getElementById('overview-plot');box.innerHTML='';
  var cats=uniq(RUNS.map(catOf)).sort(cmpCat);
  var byLab={};RUNS.forEach(function(r,i){if(!visible(r)||typeof r.loss!=='number')return;var l=labelOf(r);
    (byLab[l]=byLab[l]||{x:[],y:[],runs:[],color:color(l)});var j=cats.indexOf(catOf(r));
    var jit=((i*2654435761)%1000)/1000-0.5;byLab[l].x.push(j+0.5*jit);byLab[l].y.push(Math.max(r.loss,1e-32));byLab[l].runs.push(r.run_id);});
  var series=Object.keys(byLab).map(function(k){return byLab[k];});
  if(!series.length&&!RUNS.some(function(r){return typeof r.loss==='number';})){box.appendChild(el('p',{class:'caption',text:'No run has a loss to show.'}));return;}
  box.appendChild(plot({w:Math.min(1000,Math.max(480,box.clientWidth||900)),h:300,cats:cats,y:{kind:'log'},series:series,xlabel:MULTI?'teacher, width':'width',ylabel:'final loss',cls:'overview',empty:'no run matches the filters'}));
  box.appendChild(legend(Object.keys(byLab).map(function(k){return [k+' ('+byLab[k].x.length+')',color(k)];})));}
function tip(ev,text){var t=document.getElementById('tooltip');if(!text){t.hidden=true;return;}t.textContent=text;t.hidden=false;
  t.style.left=(ev.clientX+12)+'px';t.style.top=(ev.clientY+12)+'px';}
document.addEventListener('mouseover',function(ev){var id=ev.target.getAttribute&&ev.target.getAttribute('data-run');
  if(id&&ev.target.tagName==='circle'){var r=BYID[id];tip(ev,'run '+id+'\n'+(MULTI?'teacher '+r.teacher+', ':'')+'width '+r.width+', seed '+r.seed+'\n'+labelOf(r)+(r.explanation?' ('+r.explanation+')':'')+
    '\nloss '+fmt(r.loss,'num')+(r.grad_norm_inf!=null?'\n‖∇L‖∞ '+fmt(r.grad_norm_inf,'num'):''));}});
document.addEventListener('mouseout',function(ev){if(ev.target.tagName==='circle')tip(ev,null);});
document.addEventListener('click',function(ev){var id=ev.target.getAttribute&&ev.target.getAttribute('data-run');
  if(id&&ev.target.tagName==='circle')location.hash='run-'+id;});

// ------------------------------------------------------------ per-run section
var VIRIDIS=[[68,1,84],[59,82,139],[33,145,140],[94,201,98],[253,231,37]];
function cmap(u){u=Math.max(0,Math.min(1,u))*(VIRIDIS.length-1);var i=Math.min(Math.floor(u),VIRIDIS.length-2),f=u-i,a=VIRIDIS[i],b=VIRIDIS[i+1];
  return 'rgb('+[0,1,2].map(function(k){return Math.round(a[k]+(b[k]-a[k])*f);}).join(',')+')';}
function heatmap(s,title){var n=s.z.length,S=220,c=S/n,wrap=el('div',{class:'panel'},[el('b',{text:title})]);
  var root=sv('svg',{width:S+70,height:S+32,class:'heatmap'}),svg=sv('g',{transform:'translate(0,8)'},root);var lo=Infinity,hi=-Infinity;
  s.z.forEach(function(r){r.forEach(function(v){if(v!=null){lo=Math.min(lo,v);hi=Math.max(hi,v);}});});
  s.z.forEach(function(row,i){row.forEach(function(v,j){sv('rect',{x:i*c,y:(n-1-j)*c,width:c+.3,height:c+.3,fill:v==null?'#fff':cmap((v-lo)/((hi-lo)||1))},svg);});});
  var mid=(n-1)/2;sv('text',{x:mid*c+c/2,y:(n-1-mid)*c+c/2+5,'text-anchor':'middle',fill:'#fff','font-size':16},svg).textContent='★';
  for(var k=0;k<40;k++){sv('rect',{x:S+10,y:S-(k+1)*S/40,width:12,height:S/40+.5,fill:cmap((k+.5)/40)},svg);}
  sv('text',{x:S+26,y:S},svg).textContent=lo.toFixed(1);sv('text',{x:S+26,y:9},svg).textContent=hi.toFixed(1);
  sv('text',{x:0,y:S+16},svg).textContent='±'+fmt(Math.abs(s.a[0]),'num')+' along each direction';
  wrap.appendChild(root);return wrap;}
function fieldsTable(r,keys){var t=el('div',{class:'fields'});keys.forEach(function(k){if(!(k in r))return;
  var v=r[k];t.appendChild(el('div',{},[el('span',{text:k}),el('code',{text:typeof v==='number'?fmt(v,'num'):fmtAny(v)})]));});return t;}
function renderRun(id){
  var r=BYID[id],box=document.getElementById('run-detail');box.innerHTML='';
  document.querySelectorAll('#runs-table tr.current').forEach(function(tr){tr.classList.remove('current');});
  if(!r)return null;var tr=document.querySelector('#runs-table tr[data-run="'+id+'"]');if(tr)tr.classList.add('current');
  var sec=el('section',{id:'run-'+id,class:'run'});
  sec.appendChild(el('h3',{},[el('i',{class:'dot',style:'background:'+color(labelOf(r))}),'run '+id+' — width '+r.width+', seed '+r.seed+', '+labelOf(r)+' ',el('a',{href:'#runs',text:'↑ runs'})]));
  if(r.reason)sec.appendChild(el('p',{class:'caption',text:r.reason}));
  if(r.error)sec.appendChild(el('pre',{text:r.error+'\n'+(r.traceback||'')}));
  var a=ARR[id]||{},grid=el('div',{class:'grid2'});
  if(a.flow){var f=a.flow,ser=[{x:f.t,y:f.loss.map(function(v){return v==null?null:Math.max(v,1e-32);}),color:'#0969da',mode:'line'}];
    if(f.grad)ser.push({x:f.t,y:f.grad.map(function(v){return v==null?null:Math.max(v,1e-32);}),color:'#d62728',mode:'line'});
    var p=el('div',{class:'panel plot flow'},[el('b',{text:'Gradient flow'})]);
    p.appendChild(plot({x:{kind:'log'},y:{kind:'log'},series:ser,xlabel:'time t',ylabel:'loss, ‖∇L‖∞ (log)',cls:'flow'}));
    p.appendChild(legend([['loss (floored at 1e-32)','#0969da']].concat(f.grad?[['‖∇L‖∞ along the flow','#d62728']]:[])));grid.appendChild(p);}
  if(a.eig){var e=a.eig,p2=el('div',{class:'panel plot spectrum'},[el('b',{text:'Hessian spectrum at the end point ('+e.n+' eigenvalues'+(e.i.length<e.n?', '+e.i.length+' shown':'')+')'})]);
    p2.appendChild(plot({x:{kind:'int'},y:{kind:'symlog',lin:1e-8},series:[{x:e.i,y:e.v,color:color(labelOf(r)),r:3}],xlabel:'eigenvalue number (sorted)',ylabel:'eigenvalue (symlog, linear within ±1e-8)',cls:'spectrum'}));grid.appendChild(p2);}
  sec.appendChild(grid);
  if(a.slice_eig||a.slice_random){var g2=el('div',{class:'grid2 slices'});
    if(a.slice_eig)g2.appendChild(heatmap(a.slice_eig,'log10(L − min L): plane of Hessian eigenvectors v₁, v₂'));
    if(a.slice_random)g2.appendChild(heatmap(a.slice_random,'log10(L − min L): filter-normalised random plane'));sec.appendChild(g2);}
  if(!a.flow&&!a.eig&&!a.slice_eig&&!a.slice_random&&!r.error)sec.appendChild(el('p',{class:'caption',text:'This kind stores no per-run arrays (flow, spectrum, slices); its fields follow.'}));
  var red=D.reductionFields.filter(function(k){return k in r;});
  var rest=Object.keys(r).filter(function(k){return red.indexOf(k)<0&&k!=='traceback'&&k!=='error'&&k!=='reason';}).sort();
  if(red.length)sec.appendChild(el('div',{},[el('b',{text:'Reduction / family'}),fieldsTable(r,red)]));
  sec.appendChild(el('div',{},[el('b',{text:'All fields of the record'}),fieldsTable(r,rest)]));box.appendChild(sec);return sec;}
function onHash(){var h=decodeURIComponent(location.hash||'');if(h.indexOf('#run-')===0){var s=renderRun(h.slice(5));if(s)s.scrollIntoView();}}
window.addEventListener('hashchange',onHash);

// ------------------------------------------------------------ self-test (#selftest)
function setSelect(id,v){var s=document.getElementById(id);s.value=v;s.dispatchEvent(new Event('change'));}
function visibleRows(){return Array.prototype.filter.call(document.querySelectorAll('#runs-table tbody tr'),function(tr){return !tr.hidden;});}
function selftest(){var out={figures:{},runs_total:RUNS.length,rows:0,label_counts:{},width_counts:{},sort:{},run_section:{},overview_points:0};
  try{
  document.querySelectorAll('figure[data-figure]').forEach(function(f){var img=f.querySelector('img');
    out.figures[f.dataset.figure]={has_data:f.dataset.hasData==='1',loaded:!!(img&&img.complete&&img.naturalWidth>0),caption:(f.querySelector('figcaption')||{}).textContent||''};});
  out.rows=document.querySelectorAll('#runs-table tbody tr').length;
  out.columns=Array.prototype.map.call(document.querySelectorAll('#runs-table th'),function(th){return th.dataset.key;});
  out.overview_points=document.querySelectorAll('#overview-plot circle.pt').length;
  Array.prototype.forEach.call(document.getElementById('filter-label').options,function(o){if(!o.value)return;setSelect('filter-label',o.value);
    out.label_counts[o.value]=visibleRows().length;out.label_rows_match=(out.label_rows_match!==false)&&visibleRows().every(function(tr){return tr.dataset.label===o.value;});
    out['overview_points_'+o.value]=document.querySelectorAll('#overview-plot circle.pt').length;});
  setSelect('filter-label','');
  Array.prototype.forEach.call(document.getElementById('filter-width').options,function(o){if(!o.value)return;setSelect('filter-width',o.value);out.width_counts[o.value]=visibleRows().length;});
  setSelect('filter-width','');
  if(document.getElementById('filter-teacher')){out.teacher_counts={};out.overview_categories={};
    Array.prototype.forEach.call(document.getElementById('filter-teacher').options,function(o){if(!o.value)return;setSelect('filter-teacher',o.value);
      out.teacher_counts[o.value]=visibleRows().length;out.overview_categories[o.value]=document.querySelectorAll('#overview-plot circle.pt').length;});
    setSelect('filter-teacher','');}
  out.rows_after_reset=visibleRows().length;
  var key=COLS.some(function(c){return c.key==='loss';})?'loss':'seed';
  var th=document.querySelector('#runs-table th[data-key="'+key+'"]');
  function col(){return visibleRows().map(function(tr){return BYID[tr.dataset.run][key];}).filter(function(v){return typeof v==='number';});}
  function sorted(a,d){for(var i=1;i<a.length;i++)if((a[i]-a[i-1])*d<0)return false;return true;}
  th.click();out.sort.key=key;out.sort.ascending=sorted(col(),1);th.click();out.sort.descending=sorted(col(),-1);
  var first=visibleRows()[0].dataset.run;location.hash='run-'+first;var sec=renderRun(first);
  out.run_section={id:sec?sec.id:null,exists:!!document.getElementById('run-'+first),flow_paths:sec?sec.querySelectorAll('svg.flow path').length:0,
    spectrum_points:sec?sec.querySelectorAll('svg.spectrum circle').length:0,heatmaps:sec?sec.querySelectorAll('svg.heatmap').length:0,
    link:!!document.querySelector('#runs-table a[href="#run-'+first+'"]')};
  }catch(e){window.__lossatlasErrors.push('selftest: '+e+' '+(e.stack||''));}
  out.errors=window.__lossatlasErrors.slice();
  var pre=document.getElementById('selftest-result');pre.textContent=JSON.stringify(out);pre.setAttribute('data-done','1');}

buildFilters();buildTable();refresh();
if(location.hash==='#selftest'){if(document.readyState==='complete')selftest();else window.addEventListener('load',selftest);}
else onHash();
})();
"""
