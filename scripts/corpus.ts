/**
 * A deterministic English-like text corpus for the demo, tests and benches:
 * sentences of words drawn from a Zipf distribution over a fixed vocabulary
 * (as word frequencies in real text fall off), with punctuation, capitals and
 * a few accented words. The same seed and size always give the same bytes.
 */
import { mulberry32 } from '../src/random.ts'

const VOCABULARY = (
  'the of and to a in is it you that he was for on are with as his they be at one have this from or had by hot word but what some we can out ' +
  'other were all there when up use your how said an each she which do their time if will way about many then them write would like so these her ' +
  'long make thing see him two has look more day could go come did number sound no most people my over know water than call first who may down ' +
  'side been now find any new work part take get place made live where after back little only round man year came show every good me give our ' +
  'under name very through just form sentence great think say help low line differ turn cause much mean before move right boy old too same tell ' +
  'does set three want air well also play small end put home read hand port large spell add even land here must big high such follow act why ask ' +
  'men change went light kind off need house picture try us again animal point mother world near build self earth father head stand own page ' +
  'should country found answer school grow study still learn plant cover food sun four between state keep eye never last let thought city tree ' +
  'cross farm hard start might story saw far sea draw left late run while press close night real life few north open seem together next white ' +
  'children begin got walk example ease paper group always music those both mark often letter until mile river car feet care second book carry ' +
  'took science eat room friend began idea fish mountain stop once base hear horse cut sure watch color face wood main enough plain girl usual ' +
  'young ready above ever red list though feel talk bird soon body dog family direct pose leave song measure door product black short numeral ' +
  'class wind question happen complete ship area half rock order fire south problem piece told knew pass since top whole king space heard best ' +
  'hour better true during hundred five remember step early hold west ground interest reach fast verb sing listen six table travel less morning ' +
  'café naïve façade über déjà résumé jalapeño mesh peer lepton gossip block route worker lease'
).split(' ')

/** About `bytes` bytes of text (UTF-8), lines of one to three sentences. */
export function generateCorpus (bytes: number, seed = 42): string {
  const random = mulberry32(seed)
  // Zipf (s = 1): P(rank k) proportional to 1/k
  const cumulative: number[] = []
  let sum = 0
  for (let k = 1; k <= VOCABULARY.length; k++) cumulative.push(sum += 1 / k)
  const word = (): string => {
    const x = random() * sum
    let lo = 0
    let hi = cumulative.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if ((cumulative[mid] as number) < x) lo = mid + 1
      else hi = mid
    }
    return VOCABULARY[lo] as string
  }
  const lines: string[] = []
  let size = 0
  while (size < bytes) {
    const sentences: string[] = []
    for (let s = 1 + Math.floor(random() * 3); s > 0; s--) {
      const words: string[] = []
      for (let n = 4 + Math.floor(random() * 14); n > 0; n--) words.push(word())
      const first = words[0] as string
      words[0] = first.charAt(0).toUpperCase() + first.slice(1)
      sentences.push(words.join(random() < 0.15 ? ', ' : ' ') + (random() < 0.1 ? '?' : '.'))
    }
    const line = sentences.join(' ')
    lines.push(line)
    size += Buffer.byteLength(line) + 1
  }
  return lines.join('\n') + '\n'
}
