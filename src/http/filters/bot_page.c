/* bot_page.c — the page of the bot filter's JavaScript challenge (bot.c), served from the
 * binary. Its script finds a counter n such that SHA-256("<token>:<n>") starts with
 * `bits` zero bits (SHA-256 in plain JavaScript: crypto.subtle needs a secure context),
 * working in 50 ms slices so the page stays responsive, then stores "<token>.<n>" in the
 * proof cookie and reloads: the filter checks the proof and sets its signed cookie.
 * A printf format: %s the token, %u the bits, %s the proof cookie's name, %s "; Secure" or
 * "". The script holds no '%' of its own.
 */
#include "http/filters/auth.h"

const char bot_challenge_page[] =
    "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"robots\" "
    "content=\"noindex\"><title>Checking your browser</title></head><body>"
    "<p id=\"s\">Checking your browser&hellip;</p>"
    "<noscript><p>This site needs JavaScript to let you in.</p></noscript><script>\n"
    "(function(){var T=\"%s\",D=%u,C=\"%s\",S=\"%s\",K=[],H0=[],p=2,k=0,q,x;\n"
    /* the constants: fractional parts of the square and cube roots of the first primes */
    "while(k<64){for(q=2;q*q<=p;q++)if(p-Math.floor(p/q)*q==0)break;if(q*q>p){if(k<8){"
    "x=Math.sqrt(p);H0[k]=(x-Math.floor(x))*4294967296|0}x=Math.cbrt(p);"
    "K[k++]=(x-Math.floor(x))*4294967296|0}p++}\n"
    /* the first word of SHA-256(s), s ASCII */
    "function w0(s){var H=H0.slice(),m=[],l=s.length*8,i,j;"
    "for(i=0;i<s.length;i++)m[i>>2]|=s.charCodeAt(i)<<(24-(i&3)*8);"
    "m[l>>5]|=0x80<<(24-(l&31));m[((l+64>>9)<<4)+15]=l;"
    "for(i=0;i<m.length;i+=16){var w=[],a=H[0],b=H[1],c=H[2],d=H[3],e=H[4],f=H[5],g=H[6],"
    "h=H[7],t,u;for(j=0;j<64;j++){if(j<16)w[j]=m[i+j]|0;else{t=w[j-15];u=w[j-2];"
    "w[j]=((t>>>7|t<<25)^(t>>>18|t<<14)^(t>>>3))+((u>>>17|u<<15)^(u>>>19|u<<13)^(u>>>10))"
    "+w[j-7]+w[j-16]|0}t=h+((e>>>6|e<<26)^(e>>>11|e<<21)^(e>>>25|e<<7))+(e&f^~e&g)+K[j]"
    "+w[j]|0;u=((a>>>2|a<<30)^(a>>>13|a<<19)^(a>>>22|a<<10))+(a&b^a&c^b&c)|0;h=g;g=f;f=e;"
    "e=d+t|0;d=c;c=b;b=a;a=t+u|0}H[0]=H[0]+a|0;H[1]=H[1]+b|0;H[2]=H[2]+c|0;H[3]=H[3]+d|0;"
    "H[4]=H[4]+e|0;H[5]=H[5]+f|0;H[6]=H[6]+g|0;H[7]=H[7]+h|0}return H[0]}\n"
    "var n=0;function run(){var end=Date.now()+50;while(Date.now()<end){"
    "if(D==0||(w0(T+\":\"+n)>>>(32-D))===0){document.cookie=C+\"=\"+T+\".\"+n+"
    "\"; Path=/; Max-Age=300; SameSite=Lax\"+S;location.reload();return}n++}"
    "setTimeout(run,0)}run()})();\n"
    "</script></body></html>\n";
