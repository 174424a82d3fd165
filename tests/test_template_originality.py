"""Our templates are our own words: none repeats a FLAN or P3 template's instruction words.

The reference texts are not kept in the repository. ``REFERENCE_HASHES`` holds only the first 12
hex digits of the SHA-256 of each reference template's instruction words (lower-cased, placeholders
and punctuation removed, single spaces): google-research/FLAN ``templates.py`` and
``baseline_templates.py``, and the P3 (promptsource) prompts of 49 datasets FLAN uses (the NLI,
sentiment, paraphrase, QA, reading-comprehension, commonsense, coreference, struct-to-text and
summarization ones, QuAC, MathQA, GEM/web_nlg and GEM/wiki_lingua; list in tasks/README.md). The
stricter check (no word-sequence similarity of 0.8 or more) was run outside the repo.
"""

import hashlib
import re
import string

from flan_jax.data import mixing, registry

registry.ensure_registered()


def instruction_words(pattern: str) -> str:
  pattern = re.sub(r"\{[^{}]*\}", " ", pattern).lower()
  return " ".join("".join(ch for ch in pattern if ch not in string.punctuation).split())


def _hash(words: str) -> str:
  return hashlib.sha256(words.encode()).hexdigest()[:12]


REFERENCE_HASHES = frozenset({
    "00374e961bbc", "0052594ba313", "00d5ec0dc505", "00dd8a1e3fc9", "01560bf9f71e", "0183892bb441",
    "01988fd24d01", "01aef0679135", "01f669bb8abf", "020536876911", "0290f4092cb1", "03734af04489",
    "0390dcecd647", "03a3700feb43", "03a5a0cbad90", "03dd227a2224", "041f4a9be66f", "047014eded88",
    "04ea3dac7249", "050a15fc770f", "053263e9da0e", "0549cff422e2", "0570d0e23ed1", "0589eaaf5bf8",
    "06986d41c29c", "06ee40552ce7", "0726c568ea5b", "07337f778e52", "079fec761627", "07ba45203ae7",
    "0826c56af9e7", "0873daa4ad4b", "08d4db347774", "08dcdde6d91a", "09280640b6e0", "09389cb3c182",
    "0996aab18fdb", "0a7a3982d7d4", "0b572e162bb0", "0b58c305813c", "0b8cb753f6b1", "0bd7c3ca2614",
    "0c1c086541e0", "0c3a375d2ba6", "0c908859ff82", "0cef6f7aa05d", "0d0e9017b3f2", "0d1b7272afce",
    "0d266fe1be33", "0d7bdbeb3db2", "0d7c6bc2a9da", "0db52f4076c0", "0ece2f4f6f24", "0eddba132294",
    "0effe9d13a97", "0f0929b2e2aa", "0f12aad48db4", "0f2eec5649d7", "0f8e5937705d", "0fdc16fb8a66",
    "10b95aaf18b0", "115a358f5f08", "11a18586d6c0", "11aa34c34698", "122d99c4a14d", "12dfaf9c9411",
    "12ed5b11b990", "1353600d3dfa", "135896bee6de", "1388d7c91580", "1414f3945d14", "1467af05b555",
    "14a614f6d457", "14a9c28cf898", "1533acac8d14", "160887601a31", "1635b9c46eb3", "16956901dc7d",
    "16b29bdda610", "1718b55e336f", "176b4dd120c1", "17be70783392", "17d76f16e418", "17ed28a9ee8b",
    "17febeb35554", "181ca0ca8928", "181e2cd053c1", "192de9d37c6a", "1ae068a7086e", "1b51563e4b19",
    "1b90b7048796", "1ba4c883b760", "1baacba0e6fa", "1bc6aca6d232", "1d3d9c3d430c", "1e124aa4f26a",
    "1e7d73f96aca", "1f5087db919c", "1fdaacbaf0d6", "1ff4ecf3675f", "1fff435f17e2", "203b322bfe0c",
    "205a3c20d6b9", "20b16983fa88", "2159d9fc5506", "228ab7616d43", "23045ecdcb57", "2311032d55e4",
    "23181a0091f4", "231bbcd31d7b", "2322de3954af", "232f525de728", "2438836c5c3a", "2474fcc5639e",
    "248c93ade878", "24a9aaada131", "253d61478e17", "2570fda23b4b", "25978f01472f", "25a14133ce52",
    "25a842dbac24", "25ce2cb6f3a4", "2630e74b232f", "264887f9e54c", "26701284e659", "2694e449add6",
    "26c713bde53c", "270a5097bc2c", "274ff39ebf91", "279109d1d1b3", "27dbbc1e54e5", "2804380a8b21",
    "28913dd60ac2", "289405f60703", "28a293c4ca2d", "2979fc67e2cb", "2988d67d1111", "29951cbe66fd",
    "29a3fc292756", "29cf71ca4a28", "2b1d068f99cc", "2b4407cd5f81", "2b523e0330e6", "2b603923639f",
    "2c889215d264", "2ce128bcbeb4", "2d402bab14c3", "2d4fd9f79826", "2e0d3abb0b15", "2e7fd01df409",
    "2e97783a7cb4", "2f061a5f354d", "2f2f6cc0f8e2", "2fe2e2d7e0e8", "3033fb74370b", "304aa7ec6abd",
    "305aeaf9f48a", "30a3217dfb4e", "30b32681cf9a", "30b395c016ed", "3157c9d6d6af", "31782f419997",
    "319c6a13ce4a", "31f1976a1492", "32303ca9a522", "326efc190fd2", "32aed1379c5e", "330dffbe5c0a",
    "33acd83c71a5", "33d6f0e525a8", "3462c764e3a6", "34eec4d91531", "35301abea170", "354229d51089",
    "35a9bbcf9a6f", "36229ab79fec", "36d93446baee", "36e10878da95", "36f62a9f109c", "370be2c2f683",
    "371c3bae9de0", "37435bca2611", "3760ec34ccb1", "376889f8f9b1", "37a13d8e4b6a", "384e4856c513",
    "38b016e6666d", "38fa130b5ff2", "39165d1ef1d4", "39a4f761fc1f", "39db15dcd092", "39f6990d55f4",
    "39fc0bfef0d6", "3a80afa06405", "3b3abeb43937", "3bebf76d30d0", "3c6620131e58", "3c6bdf099cbe",
    "3c7601753cbf", "3cfec4fd0852", "3d4fd08e33e7", "3db4403f5406", "3e039acb6d26", "3e4a6034067c",
    "3f1fcef0320e", "3f826a0f111f", "3f9e09845ef9", "3fb5572b3b0f", "402ed338586f", "4035861cdb6b",
    "40a76fb9ce2b", "40acdaba62f4", "40b062faffba", "4119ddd214dc", "414213d3c987", "4153c56732b0",
    "415e270169e2", "41672691b39d", "41c3922115e2", "421c4082f1c4", "428de790399c", "42c53f6933ee",
    "42d12120fe6f", "434470372b18", "454815483c59", "4595549c1057", "46562889da1a", "46c108d2b743",
    "4770cf6ccd3b", "477bdb52d180", "47898526796a", "47a1758e1891", "47bc5c58bf7b", "47c5e5333584",
    "48299d770b46", "486e5c4d3004", "48db4eba273b", "4946f454acfb", "49fb5b9762b6", "4aa95953d083",
    "4ab9222c6f1c", "4b015cc2978b", "4ba021e3b8c7", "4c012db97c80", "4c83a8c00339", "4d239ad106cb",
    "4d7da83570af", "4d8d96599361", "4e046660f791", "4e1c79a57cf1", "4e8321ed7402", "4eb0b324c7e0",
    "4eb82f7adb5d", "4f151f973518", "4f52f015e75e", "4fbc274bec9b", "4fcad9778e3e", "5021ae26331d",
    "50330fcda0cc", "507e1c30708e", "5103059f4cd6", "5124339291cc", "516aa50ff1aa", "517290f1fee9",
    "5179794bbdc6", "5181f060322c", "519a0cf62b32", "51e826844635", "526e451a8ef1", "52f4f916c416",
    "530b12ff2791", "53275cdc11f4", "539dde75a5d5", "53b64629692d", "5420fece9447", "54b8290177f4",
    "54fec4868be3", "551b6634cc12", "552a67497ca9", "555820d33d24", "559f0dd8ca13", "563ac226e4ac",
    "568a25bdc669", "56b2e592a673", "56b3bfea3618", "56eb453155cb", "56fbc7aa9da5", "57016338cc58",
    "5706d49e65ab", "5729295ed123", "57ac7fcfc00e", "580b5394a843", "5998d6c1315b", "59b682970a97",
    "59de362b8fa1", "5a40645de376", "5a71d16a9e0c", "5a9ffafab269", "5b0cac29f0e5", "5b46f32193c9",
    "5b6a183bc480", "5c60b11eaa10", "5c873e4efdb0", "5cbda4ec8c56", "5cc0fa7f1045", "5cd21a8c1548",
    "5cec0bdda216", "5d2911277796", "5d2bb366ba98", "5d74ae2e758b", "5dabfa6d59b1", "5dec9ef4ea76",
    "5e6d0fd88b95", "5e9b0032689c", "5f439eec5e40", "5f58990363ee", "5f9c87952d00", "5fa619d190c7",
    "5fae98364d5d", "600406682007", "60192ed3b1c4", "6034766568eb", "603a5e2ca2cd", "608c8872c3e0",
    "617b42956ea7", "61ead8458c91", "61eb5ea0126f", "622324c5c55b", "62316738cef6", "628be90048bf",
    "62d1a49d4c95", "62f90db35b6f", "631726f09015", "637f9f8c959e", "6387e0634f37", "63c8e3165ff7",
    "643382d3e093", "64365b444e9e", "646a7ab177d8", "65565cc7bad8", "65846341cfb0", "6588326026ad",
    "6595896cbfb2", "660c7efa3b23", "66d1c6b8ded9", "67c7fca7df52", "6840e0f516fe", "68e048a4c3e5",
    "69200e7697a0", "696d71736896", "6a0525d070b8", "6adafdf89c77", "6b761eeb3cc0", "6ba54fb36818",
    "6c9fbd8030ca", "6d2d12f49ea3", "6dab1caae340", "6df509a00ebe", "6e023e8dfdeb", "6e50de1f85f4",
    "6e598c94b11b", "6ed3d19915b9", "6f1b5f416479", "6f99260201be", "70118ad9dfec", "70140b33be25",
    "7031502a3256", "70ca213f79cd", "715b09dafdd5", "716ae23f169e", "7219fa926698", "7254d6274edf",
    "72f36f1d4b31", "7336852057a9", "742052cff933", "742083003efe", "748a9122999b", "74991b3d7bac",
    "74d028c572d7", "74d5dbf8ec24", "74eff6faaf85", "7529eed249e7", "75341bd5af69", "75bf94dff98c",
    "75dc62f036d0", "76439ccb4386", "769274b5d343", "76a1f6891f83", "76ba23fe8585", "76fbff22e2f6",
    "7748885f3f8b", "77d213bbb6f9", "78012f43b630", "780e5bb93087", "78444f7c19e6", "78847ed45f8b",
    "788bdf792fbe", "78d9572e2f39", "78fbfebf89ab", "790e000c7c08", "79cd30dc73d8", "79df5bd5502b",
    "7a07c5f78d4a", "7a33995a361d", "7a7512739e54", "7a92477ea67c", "7aa0f878e33e", "7ab0b2892259",
    "7ab95e4ae713", "7adfa3f1371f", "7b00aac5b07f", "7c013ce24f9d", "7c793d50eb3a", "7c908429e6fc",
    "7d259aa30ec9", "7d7b16a80a0a", "7dc43621c55b", "7dc8cc304725", "7e4f212f2367", "7e713eff2d43",
    "7e8a7a41f215", "7f2ed1baba54", "7f9dab84fac5", "7ffa748c2be7", "8007a9a008ed", "80332088a0e0",
    "806a4f25ef3a", "80e998c986d0", "81685ffe132c", "8222dbbf7627", "8244fa2f6ad0", "826cfc5d8d0b",
    "82a858094a58", "82be53a86e9e", "82f06ae77caf", "82fc62870338", "83260cdaed1a", "833db4bfdf18",
    "8348cdc6cb83", "835efcfdd154", "838c1657a68b", "840b6391ecd3", "8490bc1eb1e4", "84aeffd057d7",
    "84dca79148b2", "851dfa0db548", "861a5bdc14e6", "8694190ff21c", "86a8e91de00b", "870157f7e193",
    "87026886362f", "8726efd5eeee", "87309d150452", "873ac0126485", "8757c119bd23", "878258b7fda4",
    "879739eb007d", "87a7c13a48ba", "87c73b2d98c8", "8806c47253a0", "88220f834b28", "88478ce66bce",
    "88a9cf516a94", "890069394111", "89f09cade4b2", "8aaa38d78705", "8af5c7b61c9b", "8b0a47d88098",
    "8c3070977fd0", "8c9944fed3e3", "8ca4285d76e5", "8ccfb01ccf78", "8d1a8d9b7798", "8d5f353b1aad",
    "8e00f52f4fbc", "8e35c2cd3bf6", "8e3ad6b56aab", "8f7e9512bd77", "8f8c27694279", "8f941446dc00",
    "8fa8a7afe537", "8fd892b13b68", "901fa36ad9e1", "9023f54fa49b", "9028ad7fa87a", "904d474dc128",
    "9070706f193d", "908ec2654440", "90e35c10639e", "915118222265", "919391a9d80b", "92079bc83fa8",
    "921965c52d31", "92396b678a1a", "9288ee6ce5d3", "92f5e862708d", "939274845066", "93aca0cdbd21",
    "93ee05750a55", "941fe9b21081", "944a7545dd41", "94a85da44a15", "94bd658dc152", "94d09b66afe3",
    "94ea5a85540d", "953e0061cf3f", "9541cc61facd", "95d9a0757f30", "95e889983ecf", "96661263ec0c",
    "96727168cd6a", "9679393387c4", "972aa5eaae38", "974bed6e173f", "975facc83d9c", "979112151e55",
    "9883a01d7e5a", "98e56aee5afd", "9943e41d8795", "9a0a9740e192", "9a338e0bc80f", "9a59131c5384",
    "9a82377350c3", "9aefb01732b3", "9b3620847e34", "9b46fb806448", "9bf23d88fc1a", "9ca1448792bb",
    "9cdb484207ed", "9d59eb46c4e3", "9de1df2bab11", "9eff4fa15d60", "9f08203588cb", "9f953d0a6ab4",
    "9f9ea76e1cbe", "9fdb9cc0d148", "a02b536faa5e", "a0f458a96048", "a12a2d7c3b7b", "a1c33c588e35",
    "a20e81f6769e", "a29c72e515ff", "a2d0e972eab6", "a3c009e3706f", "a3e9644fbe76", "a47ca5c04efd",
    "a498674abf7c", "a4b4c2f3f4e4", "a52636d80ac4", "a562adc61d19", "a58dd1200088", "a5a03b325389",
    "a5b759ad2631", "a5bcbd36c84f", "a5db69e7f805", "a649a5e01a49", "a679c1d00d93", "a793ab8fcc2a",
    "a7e56bcad809", "a90002e11039", "aa0923482f42", "aa1741106024", "aa8e6f1aad75", "aaf232064610",
    "ab224737324c", "ab368d9c1acc", "ab4a3475f1d4", "abad5df2e28a", "abc6fa081fa5", "abe6f220fbac",
    "acf01b94f029", "ad27b1a55e1e", "ad9a6e983a5e", "add2f8a96c93", "adff0a5bc206", "ae018673c30d",
    "aeadd3f093f7", "aee545f3a862", "af0481fded2e", "af5970384e39", "af70ab28b6a7", "afbc30c8a56a",
    "aff424a9abd3", "b05ed8465f2f", "b09a85d79d1d", "b0d35c99a847", "b0dcbfec4c9f", "b0e0fd21c073",
    "b11b8d942224", "b19b8f254df7", "b1ca7379a6a5", "b2310304aedc", "b23a2d640376", "b28cff1f231a",
    "b2b4fe239a75", "b2c004ee957e", "b2eee67db11e", "b3003337d0e9", "b316239b9634", "b3da19471012",
    "b44513b95b64", "b50ad021131d", "b61efa29923f", "b64e2861ed0a", "b6c3d47eabc2", "b78f8b075d43",
    "b7cac8f2b8c1", "b7e91d3ec12c", "b7f0c776f010", "b837241c0996", "b844098c42f7", "b849f4956cb4",
    "b85bd08edba1", "b8a1f57cd8ed", "b9010d661e77", "b94b5112ff1c", "b9ffffd3aad9", "ba33908f50af",
    "ba67fa064d7d", "baa7ec026e20", "bae9264d6d97", "bba64ed03901", "bc790ec6941e", "bc9837c15949",
    "bcd690934ecc", "bd5a7762441d", "bd7a1cb54c43", "be32115b155a", "be358c111568", "bea1834155ca",
    "beb7a643582e", "bf01ed83cfc2", "bfad79517136", "bfb573f0bdc9", "bfdbf584531e", "c008a0785b4a",
    "c01f8fd56ec4", "c088c3091656", "c0f1d5a034c0", "c0f52060d61e", "c1218a14c0d1", "c14372415480",
    "c14dabb20cd4", "c26bc2d1daf8", "c2b529179915", "c2f2660a1a2d", "c3aa32764a00", "c46711ffa5ec",
    "c48621ba730e", "c5973423cfdd", "c5b6227d924a", "c5e55785ae28", "c643f0502b8b", "c652ca494d50",
    "c6d03a60efc3", "c6dda1cbf8b1", "c7d1c83ae0b2", "c7fd782d0725", "c85c641a54c8", "c8f76dd64698",
    "c90ea1f77e21", "c9570067bca3", "c9979f1e87dd", "c9c4c1f72dd7", "ca5b5798c787", "cba0ca5c1fb9",
    "cbfa57cd5fac", "cc76ac815e9a", "ccd1257ba85f", "ccfe8f047f85", "cd7ec8a59304", "cda60943fff4",
    "ce049f7daf47", "ce9f1deef7ec", "cf0ae39a1366", "cf26eb965e55", "d036b2895881", "d0e4dee8c012",
    "d0fa97135ba5", "d10c73187664", "d13238742a76", "d137b7923ce3", "d14539f059e9", "d1f670817a86",
    "d2ba2026d0df", "d2c186be93d8", "d307a31d5234", "d39146635c92", "d3ebd05c595a", "d45a0506632e",
    "d46649f2d53d", "d481d53f43c0", "d4bb62a928d7", "d4ce30766029", "d57527a67258", "d5b3cbb9d555",
    "d62594d5aac9", "d68956befc00", "d6bcb1405453", "d6f2dbc9dc60", "d73235eaa947", "d748a244e12a",
    "d778b1578973", "d821f856e968", "d8d122ba9c55", "d927007806c6", "d953944ce472", "d95576bb34ef",
    "dbab0070cc39", "dbdb641c5ae9", "dbe1a8dee8f5", "dc1bdb89ba79", "dc4f5f89dfb4", "dc58a8712e30",
    "dc67f9f74886", "dcb2ca67dd65", "dda29e8c95c7", "ddad9d6ce938", "de157a65448c", "de37253bd3a2",
    "de38d9c88306", "de3a673dd144", "de5d11ba7ef2", "de5fc9889f80", "def431a4a8c0", "df52f5438d2b",
    "dfbcf60b3eaf", "dfd13f166e80", "e05a0a14bd96", "e1098f2602b9", "e125e6a61d5e", "e16c5c1862b9",
    "e1f15035e27b", "e22e168e1735", "e2a59539e810", "e2e472409aec", "e394f77171ec", "e3e6289a8988",
    "e40b23bd6556", "e4cc6a1a4bad", "e4dc55ee8b97", "e547d29ff055", "e5f9f4c30523", "e6235c8edff6",
    "e62b212d4014", "e6f6831d7218", "e70cc4b83cb0", "e734220bad10", "e77a7a7df043", "e78a531661e0",
    "e7ad424840df", "e7d7ba5df70a", "e85f45c5e85b", "e8d1b9775819", "ea03afdc082b", "ea943a610e1c",
    "eaa74da69c53", "eac55f926105", "eb4de8306fd4", "ebd0c29cbf2f", "ebe195ce4907", "ec30c2a1eec6",
    "ec601fc2bcf4", "ed951226a08d", "eda4685e0a1c", "ee160f9457d6", "eeb567db6c0c", "ef6ab934621d",
    "ef7649dd3975", "efd5e0856d37", "f00d5f6bbf10", "f088cf63bdbf", "f0d69947d9a1", "f196976f4d97",
    "f1c9cadef769", "f26ad86a79f0", "f3154d6a37e4", "f332bdbb7359", "f3772caaaefa", "f39f857eeacf",
    "f3d5b279b40b", "f42dc7d2fffa", "f457b6f91e77", "f46810d970dc", "f4b6f59b4429", "f52d25b27df3",
    "f5933dcac555", "f59a07d6fc75", "f6239995e448", "f6d87f5b5097", "f70873707435", "f78ca86beceb",
    "f7dab181015a", "f82a08cecfc4", "f82ce1b653e3", "f8309ff3fde2", "f84631932d67", "f8887393df80",
    "f8bd4ddcf743", "f8c28cf298b1", "f8c35db7c744", "f91e740771d1", "f966d5f6d44b", "f9682ecd6216",
    "f98038da0d95", "f9c15fd32da1", "f9c27b83b362", "fa1e18e37726", "fa436dd33502", "fa48d70a845d",
    "fb08011ae582", "fb4fb6ecd581", "fb519922faae", "fb67bd143433", "fba3fe82345d", "fc5af0bf4e5c",
    "fc839671cbc0", "fc929542e4b8", "fca890ebfe65", "fd5192cda391", "fd5bf1b31909", "fdea5d4778b0",
    "fe0e4c3bf3bd", "fe2427c9e687", "fe3719cd1cd9", "fe43b675651f", "fe5c15b3674c", "fe5ee6ad12f4",
    "fe8b1a98a5d9", "fedc61443b16", "ff1ceefb9193", "ff3642acff5f", "ff8ec4b39f33", "ffbe645beb50",
    "ffc6caa6eb6a", "ffd7ec22c6d7",
})


def test_instruction_words_normalisation():
  assert instruction_words('Premise: {premise}\n\nIs it "true"?\n\n{options_}') == (
      "premise is it true")


def test_no_template_repeats_a_reference_template():
  copies = []
  for spec in mixing.suite_specs("flan"):
    for i, template in enumerate(spec.templates + spec.continuations):
      words = instruction_words(template.inputs)
      if words and _hash(words) in REFERENCE_HASHES:
        copies.append((spec.name, i, words))
  assert not copies, f"templates whose instruction words are a reference template's: {copies}"
